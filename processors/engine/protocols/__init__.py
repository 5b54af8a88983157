"""Application-protocol analyzers (one module per protocol), registered with the engine.

Importing this package imports every protocol module, and each registers its
:class:`~wirestream.processors.engine.api.AnalyzerSpec` at import.
"""

from wirestream.processors.engine.protocols import (  # noqa: F401
    dhcp,
    dns,
    ftp,
    http,
    ntp,
    quic,
    rdp,
    sip,
    smb,
    smtp,
    snmp,
    socks,
    ssh,
    ssl,
    websocket,
)
