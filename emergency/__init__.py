"""The emergency room (issue 17, docs/emergency.md): responses to emergency cases under their plans, and the resources
(teams, warehouses and stock, equipment, shelters) found near an event and allocated to it. Above `cases`: a response
acts on its case through the case's version and history."""
