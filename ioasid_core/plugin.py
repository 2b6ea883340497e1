"""The door for plugin authors: every name a vendor plugin may import from the core.

A plugin imports from here (and, for the allocator API of SPEC.md, from ``ioasid_core``
itself); everything else in ``ioasid_core`` is internal and may be renamed or moved without
notice, as pytest keeps ``_pytest`` behind ``pytest``. A plugin's tests use this module and
:mod:`ioasid_core.testing` (the conformance kit and the bundled scenarios).

Grouped by what a plugin does with them:

- wiring: ``hookimpl``, ``VendorInfo``, ``IommuUnit``, ``MAX_PASID_BITS``, ``AllocatorOps``;
- the page-request contract: ``VendorPrq`` (required), and the optional parts a vendor may
  add: ``RowCodec`` (with ``RowVendorMixin``, ``RowCheck``), ``UnhandledLog``,
  ``DumpFormats`` (with ``DumpFormat``), ``UnitModel`` (with ``UnitShape``),
  ``GuestPasidPath`` (with ``GuestVm``, ``GuestIommu``), ``PlatformCheck`` and
  ``HardwareModel`` (with ``HardwareRules``, ``Admit``);
- what travels through the queue: ``PageRequest``, ``PageResponse``, ``Perm``,
  ``ResponseCode``, ``RequestRow``, ``ResponseRow``, ``request_row``, ``response_row``,
  ``UnhandledEvent``, ``UnhandledKind``;
- how the driver answered: ``Discipline``, and what its checks return: ``CheckResult``
  (None, a ``ResponseCode`` or a ``Verdict``);
- record layouts: ``BitLayout``, ``BitField``, ``Buffer`` (and ``byte_view``, a buffer as
  bytes; ``columns_allowed``, a batch's reserved bytes checked a column at a time),
  ``DecodeError``, ``EncodeError``;
- the model a handler looks things up in: ``IoasidSpace``, ``IoasidSet``, ``SetType``,
  ``INVALID_IOASID``, ``DEFAULT_CAPACITY``, ``Event``, ``EventKind``, ``Priority``,
  ``Subscription``, ``Platform``, ``AddressSpace``, ``Device``, ``LookupPolicy``,
  ``Outcome``, ``PrqPipeline``, ``IopfQueue``, ``make_resolver``, ``GenericPrq``;
- vendor options: ``OptionProblem``, ``int_problems``, ``bool_problems``;
- what the driver prints (``ioasid logs``): ``LogFormat``, ``LogParser``, ``LogLine``,
  ``LogRecord``, ``LogItem``, ``ParseResult``, ``Unrecognised``, ``MORE``, ``KINDS``,
  ``access_letters``, ``pci_device``;
- benchmark figures: ``BenchmarkFigure``, ``chunked_ratio``, ``service_chunks``,
  ``sva_queue_workload`` (the workload every vendor's figure measures);
- the run's plugin manager, which a guest path probes its virtual units through
  (``Hooks``: ``probe_unit``, ``remove_unit``, ``join``, ``forget``), and a private one for
  a run without plugins (``new_plugin_manager``);
- errors: ``IoasidError`` and its subclasses.
"""

from ioasid_core.allocators import AllocatorOps
from ioasid_core.bits import (
    BitField,
    BitLayout,
    Buffer,
    DecodeError,
    EncodeError,
    byte_view,
    columns_allowed,
)
from ioasid_core.errors import (
    AccessDeniedError,
    AllocatorBusyError,
    AllocatorError,
    AllocatorNoSpaceError,
    AlreadyRegisteredError,
    BusyError,
    InvalidArgumentError,
    IoasidError,
    NoSpaceError,
    NotFoundError,
    QuotaExceededError,
    ReentrancyError,
    UnknownIoasidError,
)
from ioasid_core.events import Event, Subscription
from ioasid_core.figures import BenchmarkFigure, chunked_ratio, service_chunks
from ioasid_core.guest import GuestIommu, GuestPasidPath, GuestVm, OptionProblem
from ioasid_core.logs import (
    KINDS,
    MORE,
    LogFormat,
    LogItem,
    LogLine,
    LogParser,
    LogRecord,
    ParseResult,
    Unrecognised,
    access_letters,
    pci_device,
)
from ioasid_core.markers import hookimpl
from ioasid_core.platform import AddressSpace, Device, Platform
from ioasid_core.plugins import Hooks, new_plugin_manager
from ioasid_core.prq.discipline import CheckResult, Discipline, Verdict
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.hardware import Admit, HardwareModel, HardwareRules
from ioasid_core.prq.iopf import IopfQueue
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.policy import LookupPolicy, Outcome, make_resolver
from ioasid_core.prq.types import (
    PageRequest,
    PageResponse,
    Perm,
    RequestRow,
    ResponseCode,
    ResponseRow,
    request_row,
    response_row,
)
from ioasid_core.prq.unhandled import UnhandledEvent, UnhandledKind
from ioasid_core.prq.vendor import (
    DumpFormat,
    DumpFormats,
    PlatformCheck,
    RowCheck,
    RowCodec,
    RowVendorMixin,
    UnhandledLog,
    VendorPrq,
)
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.sva_workload import sva_queue_workload
from ioasid_core.types import DEFAULT_CAPACITY, INVALID_IOASID, EventKind, Priority, SetType
from ioasid_core.units import MAX_PASID_BITS, IommuUnit, VendorInfo
from ioasid_core.vendor_options import UnitModel, UnitShape, bool_problems, int_problems

__all__ = [
    "DEFAULT_CAPACITY",
    "INVALID_IOASID",
    "KINDS",
    "MAX_PASID_BITS",
    "MORE",
    "AccessDeniedError",
    "AddressSpace",
    "Admit",
    "AllocatorBusyError",
    "AllocatorError",
    "AllocatorNoSpaceError",
    "AllocatorOps",
    "AlreadyRegisteredError",
    "BenchmarkFigure",
    "BitField",
    "BitLayout",
    "Buffer",
    "BusyError",
    "CheckResult",
    "DecodeError",
    "Device",
    "Discipline",
    "DumpFormat",
    "DumpFormats",
    "EncodeError",
    "Event",
    "EventKind",
    "GenericPrq",
    "GuestIommu",
    "GuestPasidPath",
    "GuestVm",
    "HardwareModel",
    "HardwareRules",
    "Hooks",
    "InvalidArgumentError",
    "IoasidError",
    "IoasidSet",
    "IoasidSpace",
    "IommuUnit",
    "IopfQueue",
    "LogFormat",
    "LogItem",
    "LogLine",
    "LogParser",
    "LogRecord",
    "LookupPolicy",
    "NoSpaceError",
    "NotFoundError",
    "OptionProblem",
    "Outcome",
    "PageRequest",
    "PageResponse",
    "ParseResult",
    "Perm",
    "Platform",
    "PlatformCheck",
    "Priority",
    "PrqPipeline",
    "QuotaExceededError",
    "ReentrancyError",
    "RequestRow",
    "ResponseCode",
    "ResponseRow",
    "RowCheck",
    "RowCodec",
    "RowVendorMixin",
    "SetType",
    "Subscription",
    "UnhandledEvent",
    "UnhandledKind",
    "UnhandledLog",
    "UnitModel",
    "UnitShape",
    "UnknownIoasidError",
    "Unrecognised",
    "VendorInfo",
    "VendorPrq",
    "Verdict",
    "access_letters",
    "bool_problems",
    "byte_view",
    "chunked_ratio",
    "columns_allowed",
    "hookimpl",
    "int_problems",
    "make_resolver",
    "new_plugin_manager",
    "pci_device",
    "request_row",
    "response_row",
    "service_chunks",
    "sva_queue_workload",
]
