"""The ioasid vendor plugin for Intel VT-d.

Its hook implementations are in ``ioasid_vtd.plugin``, registered by the entry point.
"""
