"""Per-group defaulting functions (Kubernetes' ``SetDefaults_*``); see :mod:`kubelite.registry.defaults`."""
