// Key Vault in RBAC mode with purge protection: every secret Spymaster reads (connectors/secrets.py).
// This deployment writes eventhubs-connection-string (the namespace's app rule); set the others
// yourself:  az keyvault secret set --vault-name <vault> --name databento-api-key --value db-...
// (and scoring-key for an Azure ML endpoint, eventhouse-client-secret for SPYMASTER_EVENTHOUSE_AUTH=app).
param location string
param name string
param eventHubsNamespace string
param eventHubsRule string
param logAnalyticsId string
param tags object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: reached only with Azure AD tokens under RBAC; firewall rules need the deployment's networks
  // checkov:skip=CKV_AZURE_189: the pods reach it over the public endpoint with workload identity; private endpoints need the VNet design
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enablePurgeProtection: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    publicNetworkAccess: 'Enabled'
  }
}

resource rule 'Microsoft.EventHub/namespaces/authorizationRules@2024-01-01' existing = {
  name: '${eventHubsNamespace}/${eventHubsRule}'
}

resource eventHubsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: the value is the namespace rule's current key, rewritten by every deployment; rotate by regenerating the key and redeploying
  parent: vault
  name: 'eventhubs-connection-string'
  properties: {
    value: rule.listKeys().primaryConnectionString
    contentType: 'Event Hubs SAS connection string (namespace level, Listen and Send)'
  }
}

resource audit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: vault
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
