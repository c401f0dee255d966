// Least privilege for the Spymaster identity, each role on the one resource it is for:
// the lake and ml-artifacts containers (read and write), raw-dbn (read), the Event Hubs namespace
// (send and receive), the Key Vault's secrets (read), the Azure ML workspace (register and score).
param principalId string
param storageName string
param eventHubsNamespace string
param keyVaultName string
param workspaceName string

var role = {
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  blobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975'
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  amlDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
}

resource lake 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${storageName}/default/lake'
}

resource artifacts 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${storageName}/default/ml-artifacts'
}

resource raw 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${storageName}/default/raw-dbn'
}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubsNamespace
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource lakeWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(lake.id, principalId, role.blobDataContributor)
  scope: lake
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.blobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource artifactsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(artifacts.id, principalId, role.blobDataContributor)
  scope: artifacts
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.blobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource rawReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(raw.id, principalId, role.blobDataReader)
  scope: raw
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.blobDataReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace.id, principalId, role.eventHubsDataSender)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.eventHubsDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource receiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace.id, principalId, role.eventHubsDataReceiver)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.eventHubsDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, role.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource dataScientist 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, role.amlDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.amlDataScientist)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
