"""Terraform front end: the ``alab`` provider (resource ``alab_layer``) over the core plan/deploy API.

Importing this package does not import the ``tf`` framework, so ``alab terraform install`` can say
clearly when the ``terraform`` extra is missing. The provider itself lives in ``provider.py``.
"""

#: The address users put in ``required_providers``. ``terraform.local`` never resolves on the network,
#: so only the filesystem mirror (or dev override) that ``alab terraform install`` writes can supply it.
PROVIDER_HOST = "terraform.local"
PROVIDER_NAMESPACE = "alab"
PROVIDER_TYPE = "alab"
PROVIDER_SOURCE = f"{PROVIDER_HOST}/{PROVIDER_NAMESPACE}/{PROVIDER_TYPE}"
