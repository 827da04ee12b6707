"""`range_asset`: how an asset that materialises a whole range of its partitions in one run is
declared (the inference, reconciliation and training-set assets).

Their bodies loop over ``context.partition_keys`` and emit one event per partition, so a backfill
over any range is a single run (`BackfillPolicy.single_run`) -- never one run per partition, whose
Dagster bookkeeping would cost more than the work (see the design's partition constraint).
"""

from collections.abc import Sequence

from dagster import AssetCheckSpec, AssetSpec, BackfillPolicy, multi_asset


def range_asset(spec: AssetSpec, checks: Sequence[tuple[str, str]] = ()):
    """Decorator of ``spec``'s asset, run over a partition range in one run, with the checks
    ``(name, description)`` of ``checks`` on the same partitions.

    A ``multi_asset`` of one spec (not ``@asset``) so the body can yield a materialisation and
    check results per partition (``can_subset=True``: a run may ask for the checks without
    the asset, or the asset without them).
    """
    return multi_asset(
        name=spec.key.to_user_string(), specs=[spec], backfill_policy=BackfillPolicy.single_run(),
        can_subset=True,
        check_specs=[AssetCheckSpec(name, asset=spec.key, partitions_def=spec.partitions_def, description=text)
                     for name, text in checks])
