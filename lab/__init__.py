"""Local lab for honeydue.infra: node image, stand-ins for remote APIs. Not shipped in the collection."""
