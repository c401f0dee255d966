// Production: zone-redundant lake (from environment), more partitions and throughput, a week of
// replay window on the hubs, more nodes, a larger capacity, three months of logs.
using 'main.bicep'

param prefix = 'spyprod'
param environment = 'prod'
param eventHubsCapacity = 4
param inputPartitions = 16
param outputPartitions = 4
param retentionDays = 7
param aksVmSize = 'Standard_D8ds_v5'
param aksNodeCount = 4
param fabricSku = 'F8'
param fabricAdmins = ['quant-lead@contoso.com', 'platform-oncall@contoso.com']
param logRetentionDays = 90
