"""Watches and alerts: tell a catalog's owner when one of its items appears in another catalog.

Interface::

    from watches.service import Watches, parse_watch, schedule_match

    watch = Watches(store, queue).create(parse_watch(body, owner, 0.5, allow))
    schedule_match(queue, catalog_id, owner)    # after an upload; matching runs as a job

Modules: `watches.model` (typed Watch, Alert, Delivery and their JSON), `watches.store`
(keys and compare-and-swap writes), `watches.matcher` (the normal pipeline, one alert per
item pair), `watches.webhook` (URL safety, HMAC signature, one POST), `watches.delivery`
(attempts and back-off), `watches.job` (the job kinds ``watch.scan``, ``watch.match``,
``watch.deliver``).
"""
