// The one identity every Spymaster pod runs as (AKS workload identity federates the Kubernetes
// service account to it in aks.bicep); roles.bicep gives it what the workloads need, no more.
param location string
param name string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
