// A small development estate: one node pool of two nodes, F2, a day of retention.
using 'main.bicep'

param prefix = 'spydev'
param environment = 'dev'
param eventHubsCapacity = 1
param inputPartitions = 4
param outputPartitions = 2
param retentionDays = 1
param aksNodeCount = 2
param fabricSku = 'F2'
param fabricAdmins = ['quant-lead@contoso.com']
param logRetentionDays = 30
