// The Fabric capacity the Eventhouse, its KQL database and the Real-Time Dashboard run on
// (infra/fabric/SETUP_GUIDE.md creates those in the workspace bound to this capacity).
param location string
param name string
param sku string
param admins array
param tags object

resource capacity 'Microsoft.Fabric/capacities@2023-11-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    tier: 'Fabric'
  }
  properties: {
    administration: {
      members: admins
    }
  }
}

output name string = capacity.name
