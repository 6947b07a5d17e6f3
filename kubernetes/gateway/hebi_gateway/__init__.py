"""hebi's gateway: the one process exposed to the network. Entry point: ``hebi_gateway.app:create_app``
(served by ``hebi-gateway serve``)."""
