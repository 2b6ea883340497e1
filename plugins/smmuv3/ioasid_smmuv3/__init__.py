"""The ioasid vendor plugin for Arm SMMUv3.

- ``model``: the SMMU (IDR1.SSIDSIZE, 2-level CD tables), its masters and their SSID widths,
  SVA PASID allocation, the ``IommuUnit`` it is probed as;
- ``priq``: PRI queue entries <-> ``PageRequest``;
- ``events``: event queue records, stall faults as ``PageRequest``;
- ``commands``: CMD_PRI_RESP and CMD_RESUME, and their mapping from ``PageResponse``.

Its hook implementations are in ``ioasid_smmuv3.plugin``, registered by the entry point.
"""
