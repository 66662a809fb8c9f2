"""The gateway's building blocks: route modules (one object per API group, composed over one
runner client in routes.py), intake glue, errors, middlewares, the plain HTTP routes (web.py).

service.py declares the BentoML APIs, each a short delegation to one of these route objects;
the plain HTTP routes receive the same objects (bound.py).
"""
