"""The ioasid vendor plugin for AMD-Vi (the AMD IOMMU).

- ``ppr``: PPR log entries <-> ``PprEntry`` and request rows;
- ``commands``: COMPLETE_PPR_REQUEST and its status codes;
- ``hardware``: the ``[vendor.amd-vi]`` unit model (PPR log length, PASmax);
- ``handlers``: the vendors ``amd-vi`` (v5.x ``amd_iommu_v2``) and ``amd-vi-iopf``
  (today's ``ppr.c``).

Its hook implementations are in ``ioasid_amd_vi.plugin``, registered by the entry point.
"""
