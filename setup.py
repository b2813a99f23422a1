"""Build the optional compiled loops of `related update` (training/_update_kernels.pyx).

Everything else is declared in pyproject.toml. The extension is optional: without a C
compiler the install still succeeds and `related update` runs the same arithmetic in numpy.
"""

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # an sdist built without Cython: no compiled loops
    extensions = []
else:
    extensions = cythonize(
        [Extension("training._update_kernels", ["training/_update_kernels.pyx"],
                   # no fused multiply-add: the floats must be those of training's kernels
                   extra_compile_args=["-O3", "-ffp-contract=off"])],
        language_level=3, quiet=True,
    )
    for extension in extensions:  # cythonize() does not carry the flag over
        extension.optional = True  # a failed build (no compiler) warns and installs without it

setup(ext_modules=extensions)
