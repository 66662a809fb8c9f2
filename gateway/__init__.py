"""The gateway's building blocks: intake glue, API groups (mixins), errors, web routes.

service.py composes them into one BentoML service; each API group is a mixin class whose
`@bentoml.api` methods BentoML collects from the composed class.
"""
