"""The ioasid vendor plugin for virtio-iommu.

Its hook implementations are in ``ioasid_virtio_iommu.plugin``, registered by the entry point.
"""
