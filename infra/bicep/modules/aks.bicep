// The cluster the dataflow (StatefulSet), the ingestor and the HUD run on, with the OIDC issuer
// and workload identity on, and the federation of the Kubernetes service account to the
// Spymaster identity: a pod of that service account gets the identity's tokens, no secret mounted.
param location string
param name string
param vmSize string
param nodeCount int
param logAnalyticsId string
param registryName string
param identityName string
param kubernetesNamespace string
param serviceAccountName string
param tags object

var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource cluster 'Microsoft.ContainerService/managedClusters@2024-05-01' = {
  // checkov:skip=CKV_AZURE_6: the API server's authorized IP ranges are the operators' own networks, set per deployment
  // checkov:skip=CKV_AZURE_8: the Kubernetes dashboard add-on no longer exists in this API version; nothing enables it
  // checkov:skip=CKV_AZURE_172: no Secrets Store CSI driver: the pods read Key Vault with the SDK (connectors/secrets.py)
  // checkov:skip=CKV_AZURE_227: encryption at host needs the subscription feature EncryptionAtHost registered first
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    dnsPrefix: name
    enableRBAC: true
    disableLocalAccounts: true          // Azure AD only: no static admin kubeconfig
    aadProfile: {
      managed: true
      enableAzureRBAC: true
    }
    autoUpgradeProfile: {
      upgradeChannel: 'patch'
    }
    networkProfile: {
      networkPlugin: 'azure'
      networkPolicy: 'azure'            // enforces infra/k8s/networkpolicy.yaml
    }
    agentPoolProfiles: [
      {
        name: 'system'
        mode: 'System'
        count: nodeCount
        vmSize: vmSize
        osType: 'Linux'
        osSKU: 'AzureLinux'
        osDiskType: 'Ephemeral'         // the VM's local disk: faster, and nothing on it outlives the node
        maxPods: 110
        type: 'VirtualMachineScaleSets'
      }
    ]
    oidcIssuerProfile: {
      enabled: true
    }
    securityProfile: {
      workloadIdentity: {
        enabled: true
      }
    }
    addonProfiles: {
      omsagent: {
        enabled: true
        config: {
          logAnalyticsWorkspaceResourceID: logAnalyticsId
        }
      }
    }
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource federation 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: identity
  name: 'aks-${serviceAccountName}'
  properties: {
    issuer: cluster.properties.oidcIssuerProfile.issuerURL
    subject: 'system:serviceaccount:${kubernetesNamespace}:${serviceAccountName}'
    audiences: ['api://AzureADTokenExchange']
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource pull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, cluster.id, acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPull)
    principalId: cluster.properties.identityProfile.kubeletidentity.objectId
    principalType: 'ServicePrincipal'
  }
}

output name string = cluster.name
output oidcIssuer string = cluster.properties.oidcIssuerProfile.issuerURL
