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
  // checkov:skip=CKV_AZURE_35: the workspace's own storage, reached by Azure ML's identity; private endpoints need the deployment's VNet design
  // checkov:skip=CKV_AZURE_206: holds only the workspace's run artifacts, which training can recreate: locally redundant
  // checkov:skip=CKV_AZURE_43: the name is take(prefix + 'ml' + uniqueString(...), 24), lower-case letters and digits, which checkov cannot evaluate
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
  // checkov:skip=CKV_AZURE_166: image quarantine is a Premium-tier feature; images are built by `make images` from pinned bases
  // checkov:skip=CKV_AZURE_139: AKS pulls over the public endpoint with its kubelet identity (AcrPull); private link needs the VNet design
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
  // checkov:skip=CKV_AZURE_243: the online endpoint is called by the flow from AKS with its key; private endpoints need the VNet design
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
