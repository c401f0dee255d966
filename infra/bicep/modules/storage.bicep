// ADLS Gen2 (hierarchical namespace): raw-dbn (the Databento files replays read), lake (the
// Bronze/Silver/Gold Delta tables), ml-artifacts (training outputs). No shared-key or anonymous
// access: the pods reach it with their identity's token (roles.bicep).
param location string
param name string
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GZRS'])
param redundancy string
param tags object

var containers = ['raw-dbn', 'lake', 'ml-artifacts']

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: public endpoint, reachable only with Azure AD tokens (shared keys are off); private endpoints need the deployment's VNet design
  // checkov:skip=CKV_AZURE_206: the redundancy is a parameter: zone-redundant in prod, locally redundant in dev
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: redundancy
  }
  properties: {
    isHnsEnabled: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    accessTier: 'Hot'
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for c in containers: {
  parent: blobs
  name: c
  properties: {
    publicAccess: 'None'
  }
}]

output name string = account.name
output dfsHost string = '${account.name}.dfs.${environment().suffixes.storage}'
