"""The ioasid vendor plugin for Intel VT-d.

- ``registers``: CAP/ECAP/VCCAP capabilities and the two VCMD/VCRSP layouts (spec 3.1, 3.3);
- ``vcmd``: the VMM's emulated virtual command registers and the guest's VCMD allocator;
- ``state``: which guest unit has which registers, and scalable mode per guest;
- ``guest``: the guest PASID path of a scenario's VMs (VCMD units per VM, per run);
- ``descriptors``: page request / page group response descriptors and the PRQ ring decoder;
- ``plugin``: the hook implementations, registered by the ``vtd`` entry point.
"""
