"""People and meaning: interaction timeline, calendar cache, identities, contacts, vectors, retrieval.

Other domains read it through :mod:`yarn_assets.people.service` and :mod:`yarn_assets.people.retrieval`.
"""
