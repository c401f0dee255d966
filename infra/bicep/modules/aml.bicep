// Azure ML: the model registry and the online endpoints (infra/azureml/), with its own storage
// (a workspace's default storage cannot have a hierarchical namespace) and the container registry
// that also holds the Spymaster images (aks.bicep lets the cluster pull from it).
param location string
param name string
param storageName string
param registryName string
param keyVaultId string
param appInsightsId string
param tags object

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: registryName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    adminUserEnabled: false
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    friendlyName: 'Spymaster'
    storageAccount: storage.id
    keyVault: keyVaultId
    applicationInsights: appInsightsId
    containerRegistry: registry.id
    publicNetworkAccess: 'Enabled'
  }
}

output workspaceName string = workspace.name
output registryName string = registry.name
output registryLoginServer string = registry.properties.loginServer
