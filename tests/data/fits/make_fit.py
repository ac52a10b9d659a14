"""Write the small fit file of this folder for the running stack:

    python tests/data/fits/make_fit.py tests/data/fits/tiny-<stack>.nc [SPEC]

The tiny instrument on 30 simulated firms, 2 chains x 20 draws: a fit file as
``smeintl fit`` writes it, kept to check that fit files written on one stack
(Python 3.11 with PyMC 5 and ArviZ 0.x, or Python 3.13 with PyMC 6 and ArviZ 1) read
back on the other (``tests/test_fit_files.py``).
"""

import sys
import warnings

from smeintl.data import load_spec
from smeintl.measurement import MeasurementModel, save_fit
from smeintl.simulate import simulate_survey

out = sys.argv[1]
spec = load_spec(sys.argv[2] if len(sys.argv) > 2 else "tiny_instrument.toml")
survey = simulate_survey(spec, 30, n_groups=3, random_seed=7).survey
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fit = MeasurementModel(spec).fit(survey, random_seed=8, draws=20, tune=50, chains=2, sampler="nutpie",
                                     progressbar=False)
save_fit(fit, out, overwrite=True)
print(out)
