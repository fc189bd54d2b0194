"""Agreement statistics for judge calibration: the one import point for the rest of the app.

Pure functions, no Django: inputs are label sequences or (n_items, n_raters) tables with
None/NaN for a missing rating. The code lives in three modules by topic and is re-exported
here so callers need not know the split:

- :mod:`stats_agreement`: two raters (percent agreement, Cohen's kappa, confusion matrix,
  bootstrap interval, pairwise kappas, Landis & Koch bands);
- :mod:`stats_reliability`: a panel of raters (Fleiss' kappa, Krippendorff's alpha, ICC1);
- :mod:`stats_scores`: a judge against a reference (majority label, accuracy and macro
  precision/recall/F1, Spearman);
- :mod:`stats_rates`: a share with Wilson's interval, a mean change with its t interval.

Undefined chance-corrected statistics (every rating the same single value) are 1.0 when all
compared pairs agree and NaN when nothing can be compared; see :mod:`stats_agreement`.
"""

from apps.calibration.stats_agreement import (
    bootstrap_kappa_ci,
    bootstrap_kappa_cis,
    bootstrap_kappa_cis_coded,
    cohen_kappa,
    confusion,
    kappa_from_confusion,
    landis_koch,
    paired_kappa_difference,
    pairwise_kappas,
    percent_agreement,
)
from apps.calibration.stats_common import is_missing
from apps.calibration.stats_rates import mean_interval, wilson
from apps.calibration.stats_reliability import fleiss_kappa, icc1, krippendorff_alpha
from apps.calibration.stats_scores import (
    classification_scores,
    majority,
    majority_vector,
    spearman,
)

__all__ = [
    "bootstrap_kappa_ci",
    "bootstrap_kappa_cis",
    "bootstrap_kappa_cis_coded",
    "classification_scores",
    "cohen_kappa",
    "confusion",
    "fleiss_kappa",
    "icc1",
    "is_missing",
    "kappa_from_confusion",
    "krippendorff_alpha",
    "landis_koch",
    "majority",
    "majority_vector",
    "mean_interval",
    "paired_kappa_difference",
    "pairwise_kappas",
    "percent_agreement",
    "spearman",
    "wilson",
]
