"""The ioasid vendor plugin for Arm SMMUv3.

Its hook implementations are in ``ioasid_smmuv3.plugin``, registered by the entry point.
"""
