"""The one small library every hebi component may import: configuration, logging, the path sandbox,
the identity the gateway hands to a session, and the streaming proxy. Nothing component-specific."""
