// Spymaster's Azure estate in one resource group: the lake and raw files (ADLS Gen2), Event Hubs
// (the Kafka endpoint the flow reads and writes), Key Vault (every secret), Log Analytics, Azure ML
// (model registry and online endpoints), a Fabric capacity (the Eventhouse and its dashboards), one
// user-assigned managed identity with least-privilege roles, and an AKS cluster for the workers.
//
// AKS, not Container Apps: the dataflow is a Bytewax cluster whose processes find each other by
// stable per-pod DNS names (a StatefulSet behind a headless Service) and keep their recovery
// partitions on per-pod volumes; Container Apps has neither stable replica identities nor per-replica
// volumes. The pods reach Azure as the managed identity through AKS workload identity.
//
//   az deployment group create -g <rg> -f infra/bicep/main.bicep -p infra/bicep/dev.bicepparam
targetScope = 'resourceGroup'

@description('Azure region of every resource.')
param location string = resourceGroup().location

@description('Short name prefixed to every resource (lower-case letters and digits).')
@minLength(3)
@maxLength(11)
param prefix string

@description('dev or prod: sizes, retention and redundancy follow it.')
@allowed(['dev', 'prod'])
param environment string

@description('Event Hubs tier: Standard or above (the Kafka endpoint; Basic has none).')
@allowed(['Standard', 'Premium'])
param eventHubsSku string = 'Standard'

@description('Throughput or processing units of the Event Hubs namespace.')
@minValue(1)
param eventHubsCapacity int = 1

@description('Partitions of mbo_raw (instruments are spread over them by key) and of each output hub.')
@minValue(1)
param inputPartitions int = 4

@minValue(1)
param outputPartitions int = 2

@description('Days an event stays on a hub (the replay window of the live path).')
@minValue(1)
@maxValue(7)
param retentionDays int = 1

@description('The flow\'s output hubs (SPYMASTER_OUTPUT_TOPICS of infra/k8s/configmap.yaml).')
param outputHubs array = [
  'features_gold'
  'inference_scores'
  'labels'
  'book_snapshot_1s'
  'wall_surface_1s'
  'vacuum_surface_1s'
  'physics_bands_1s'
  'session_levels'
  'level_approach'
]

@description('AKS node size and count (each dataflow process asks for 2 CPUs and 4 GiB).')
param aksVmSize string = 'Standard_D4ds_v5'

@minValue(1)
param aksNodeCount int = 2

@description('Kubernetes namespace and service account the pods run as (infra/k8s/serviceaccount.yaml).')
param kubernetesNamespace string = 'spymaster'
param serviceAccountName string = 'spymaster'

@description('Fabric capacity size (F2 and up) and its administrators (user principal names).')
param fabricSku string = 'F2'
param fabricAdmins array

@description('Days Log Analytics keeps logs.')
@minValue(30)
param logRetentionDays int = 30

var tags = {
  application: 'spymaster'
  environment: environment
}
var suffix = uniqueString(resourceGroup().id, prefix)

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    location: location
    name: '${prefix}-id-${environment}'
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    name: '${prefix}-logs-${environment}'
    retentionDays: logRetentionDays
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    name: take('${prefix}lake${suffix}', 24)
    redundancy: environment == 'prod' ? 'Standard_ZRS' : 'Standard_LRS'
    tags: tags
  }
}

module eventHubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  params: {
    location: location
    name: '${prefix}-events-${suffix}'
    sku: eventHubsSku
    capacity: eventHubsCapacity
    inputPartitions: inputPartitions
    outputPartitions: outputPartitions
    retentionDays: retentionDays
    outputHubs: outputHubs
    tags: tags
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    name: take('${prefix}-kv-${suffix}', 24)
    eventHubsNamespace: eventHubs.outputs.namespaceName
    eventHubsRule: eventHubs.outputs.appRuleName
    logAnalyticsId: monitoring.outputs.workspaceId
    tags: tags
  }
}

module aml 'modules/aml.bicep' = {
  name: 'aml'
  params: {
    location: location
    name: '${prefix}-ml-${environment}'
    storageName: take('${prefix}ml${suffix}', 24)
    registryName: take('${prefix}acr${suffix}', 50)
    keyVaultId: keyVault.outputs.id
    appInsightsId: monitoring.outputs.appInsightsId
    tags: tags
  }
}

module fabric 'modules/fabric.bicep' = {
  name: 'fabric'
  params: {
    location: location
    name: '${prefix}fabric${environment}'
    sku: fabricSku
    admins: fabricAdmins
    tags: tags
  }
}

module aks 'modules/aks.bicep' = {
  name: 'aks'
  params: {
    location: location
    name: '${prefix}-aks-${environment}'
    vmSize: aksVmSize
    nodeCount: aksNodeCount
    logAnalyticsId: monitoring.outputs.workspaceId
    registryName: aml.outputs.registryName
    identityName: identity.outputs.name
    kubernetesNamespace: kubernetesNamespace
    serviceAccountName: serviceAccountName
    tags: tags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    storageName: storage.outputs.name
    eventHubsNamespace: eventHubs.outputs.namespaceName
    keyVaultName: keyVault.outputs.name
    workspaceName: aml.outputs.workspaceName
  }
}

// What the application's configuration needs (infra/k8s/configmap.yaml, serviceaccount.yaml).
output lakeUri string = 'abfss://lake@${storage.outputs.dfsHost}/spymaster'
output rawDbnUri string = 'abfss://raw-dbn@${storage.outputs.dfsHost}/'
output mlArtifactsUri string = 'abfss://ml-artifacts@${storage.outputs.dfsHost}/'
output eventHubsInput string = 'eventhubs://${eventHubs.outputs.namespaceName}/mbo_raw'
output keyVaultUri string = keyVault.outputs.uri
output identityClientId string = identity.outputs.clientId
output amlWorkspaceName string = aml.outputs.workspaceName
output registryLoginServer string = aml.outputs.registryLoginServer
output aksName string = aks.outputs.name
output aksOidcIssuer string = aks.outputs.oidcIssuer
output fabricCapacityName string = fabric.outputs.name
output logAnalyticsWorkspaceId string = monitoring.outputs.workspaceId
