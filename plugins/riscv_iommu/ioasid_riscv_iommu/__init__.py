"""The ioasid vendor plugin for the RISC-V IOMMU.

- ``pq``: page-request queue records <-> request rows;
- ``commands``: the ATS.PRGR command and its response codes;
- ``hardware``: the ``[vendor.riscv-iommu]`` unit model (queue size, PD8/PD17/PD20);
- ``handlers``: the vendor ``riscv-iommu`` (the 2023 RFC driver).

Its hook implementations are in ``ioasid_riscv_iommu.plugin``, registered by the entry point.
"""
