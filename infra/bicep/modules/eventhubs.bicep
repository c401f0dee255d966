// The Event Hubs namespace: mbo_raw (the ingestor writes, the flow reads) and the flow's output
// hubs, with one consumer group per consumer. Standard or above: the Kafka endpoint (port 9093)
// that the flow, the HUD and `spymaster publish` use. The app rule's connection string is what
// keyvault.bicep stores as the secret eventhubs-connection-string.
param location string
param name string
@allowed(['Standard', 'Premium'])
param sku string
param capacity int
param inputPartitions int
param outputPartitions int
param retentionDays int
param outputHubs array
param tags object

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
    capacity: capacity
  }
  properties: {
    minimumTlsVersion: '1.2'
    kafkaEnabled: true
    disableLocalAuth: false // the Kafka clients authenticate with the app rule's SAS connection string
  }
}

resource input 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: 'mbo_raw'
  properties: {
    partitionCount: inputPartitions
    messageRetentionInDays: retentionDays
  }
}

resource flowGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: input
  name: 'spymaster-flow'
}

resource outputs 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = [for hub in outputHubs: {
  parent: namespace
  name: hub
  properties: {
    partitionCount: outputPartitions
    messageRetentionInDays: retentionDays
  }
}]

resource hudGroups 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = [for (hub, i) in outputHubs: {
  parent: outputs[i]
  name: 'spymaster-hud'
}]

resource eventhouseGroups 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = [for (hub, i) in outputHubs: {
  parent: outputs[i]
  name: 'fabric-eventhouse'
}]

resource appRule 'Microsoft.EventHub/namespaces/authorizationRules@2024-01-01' = {
  parent: namespace
  name: 'spymaster-app'
  properties: {
    rights: ['Listen', 'Send']
  }
}

output namespaceName string = namespace.name
output appRuleName string = appRule.name
