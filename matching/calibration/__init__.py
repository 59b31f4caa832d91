"""Each catalog calibrated on itself: its own look-alikes say how far its scores are trusted.

The kind's calibration (`matching.score`) was fitted on the dev photos of its kind; a catalog of
other things (cars in a `products` catalog, zebras in an `animals` one, any `other` catalog)
gets scores that do not mean what they say (issue 14: 88 % of strangers confirmed). So each
catalog is scored against itself (`collect_pairs`):

* impostor pairs: each sampled catalog image is a query with its own item taken out of the
  catalog; its top answer is the catalog's closest look-alike, always wrong (what a photo of
  something not in the catalog meets);
* genuine pairs: the same query with its item in: against the item's other images when it has
  two or more (the image itself left out), else against itself, the query then being an
  augmented view (a crop, colour jitter, a down-scale; `augmented_view`).

`fit_adjustment` then fits a Platt adjustment of the kind's logit on the top answers of those
pairs, ``score = sigmoid(scale * logit + offset)``, with the impostors weighing
``stranger_share`` of the fit (the dev photos' share of open-set queries, 15 %), and the lowest
threshold at which the Wilson bound ``bound_z`` standard errors out of the share of the
catalog's impostors confirmed is <= ``max_stranger``. For a kind with a trained model the
adjustment may only lower scores above the logit's zero (``scale`` <= 1, ``offset`` <= 0) and
the threshold is never below the kind's, so where the kind's calibration holds (its own dev
photos) the catalog's changes little; for the other kinds both are free and the threshold is at
least `UNTRAINED_FLOOR`, and where no threshold keeps the catalog's look-alikes unconfirmed the
scores stay the conservative default's (the pairs that cannot separate right from wrong do not
reshape the score either). The score stays a probability: that the top answer is right, for the
catalog's own pairs weighted as a query stream with 15 % strangers. Genuine pairs from one
image's views are easier than a new photo, so on real photos the fitted score is an upper
estimate for the kinds the models do not know: confirmations get rarer, and right.

A catalog with fewer than `MIN_IMPOSTORS` impostor pairs (or one item) is ``too_small``: it
keeps the kind's default, marked so. A calibration is fingerprinted by the catalog content it
was fitted on (``content_digest``: kind, items, images and model fingerprints, see
`catalog.manifest.Manifest.content_digest`) and by the kind calibration it adjusts
(`calibration_digest`); either changed and it is stale, and not used.

The package, one module per job (import the names from their module; this file exports none,
so `matching.pipeline` and `matching.catalog_view` can read the record without loading the
pair collection, which runs the pipeline):

* `record`: the stored calibration and what it says (`CatalogCalibration`, `FitOptions`,
  `resolve`, `describe_state`, `calibration_digest`, the constants);
* `pair_record`: the pair records the fits read, typed (`PairRecord`, `Candidate`), and
  their one JSON serialiser (``to_dict``/``from_dict``: the side file, bench's files);
* `pairs`: the catalog scored against itself (`CatalogImage`, `collect_pairs`,
  `sample_queries`, `augmented_view`; the catalog searched without an item or an image by
  `matching.index.VectorIndex.without`);
* `platt`: a record's top answer, the Platt fit and the worst look-alikes;
* `reviews`: the fit once people reviewed enough sightings: the prior moved only as far as
  cross-validation on them allows (`fit_on_reviews`, `_fit_with_reviews`, `review_pair_counts`);
* `fit`: `fit_adjustment`, the fit on the catalog's own pairs and its threshold search;
* `calibrate`: `fit_catalog_calibration`, pairs collected then fitted.

The import contracts in ``pyproject.toml`` keep the direction: ``calibrate`` > ``pairs`` |
``fit`` > ``reviews`` > ``platt`` > ``record`` | ``pair_record``, and ``pairs`` >
`matching.pipeline` > `matching.catalog_view` > ``record``.
"""
