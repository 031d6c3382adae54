"""Gradient clipping on pytrees, with the exact semantics of torch and Keras.

=================================  ==========================================================
this module                        what it matches
=================================  ==========================================================
``clip_grad_norm``                 ``torch.nn.utils.clip_grad_norm_`` (any p > 0 or inf)
``clip_grad_value``                ``torch.nn.utils.clip_grad_value_`` and Keras ``clipvalue``
``clip_per_tensor_norm``           Keras ``clipnorm`` (``tf.clip_by_norm`` on each tensor)
``clip_global_norm``               Keras ``global_clipnorm`` (``tf.clip_by_global_norm``)
=================================  ==========================================================

All functions are pure and jittable. Argument checks run eagerly when the arguments are
concrete Python or NumPy values.

References: torch.nn.utils.clip_grad_norm_ documentation; Keras optimizer documentation;
docs/theory.md §7.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from research import validate

_tree_map = jax.tree_util.tree_map
_leaves = jax.tree_util.tree_leaves


def check_norm_type(norm_type) -> float:
    try:
        p = float(norm_type)
    except (TypeError, ValueError) as err:
        raise ValueError(f"norm_type must be a number > 0 or inf; got {norm_type!r}.") from err
    if not p > 0:  # also rejects NaN
        raise ValueError(f"norm_type must be a number > 0 or inf; got {norm_type!r}.")
    return p


def _pow2_scales(m):
    """Powers of two (s, 1 / s) with m / s in [1, 2) for ordinary finite m >= 0.

    s is the power of two just below m, kept in [tiny, 1 / tiny] (tiny the smallest normal
    number) so that 1 / s is a normal number too: XLA on CPU flushes subnormal numbers to
    zero. Both come from m's exponent bits, without a division. For m = 0, s = tiny; for inf or
    NaN m, s = 1 / tiny, so that inf / s = inf and NaN / s = NaN carry through.
    """
    info = jnp.finfo(m.dtype)
    ints = {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[m.dtype.itemsize]
    bias = (1 << (info.nexp - 1)) - 1  # 1023 in float64
    lowest, highest = 1 << info.nmant, (2 * bias - 1) << info.nmant  # exponents 1 .. 2045
    bits = jax.lax.bitcast_convert_type(m, ints) & jnp.asarray(((1 << info.nexp) - 1)
                                                               << info.nmant, ints)
    bits = jnp.clip(bits, jnp.asarray(lowest, ints), jnp.asarray(highest, ints))
    inv_bits = jnp.asarray(2 * bias << info.nmant, ints) - bits  # exponent e -> -e
    return (jax.lax.bitcast_convert_type(bits, m.dtype),
            jax.lax.bitcast_convert_type(inv_bits, m.dtype))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _pnorm(leaves, p: float):
    """(sum |x|^p)^(1/p) over a tuple of non-empty arrays of one floating dtype, finite p."""
    if sum(x.size for x in leaves) == 1:  # one number: its absolute value, exactly
        return jnp.abs(leaves[0]).reshape(())
    m = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x)) for x in leaves])  # NaN if any NaN
    s, inv = _pow2_scales(m)
    if p == 2.0:
        return jnp.sqrt(sum(jnp.sum(jnp.square(x * inv)) for x in leaves)) * s
    return sum(jnp.sum(jnp.abs(x * inv) ** p) for x in leaves) ** (1.0 / p) * s


@_pnorm.defjvp
def _pnorm_jvp(p, primals, tangents):
    """d||x||_p = sum_i (|x_i| / ||x||)^(p-1) sign(x_i) dx_i, and 0 where ||x|| = 0 or x_i = 0
    (the one-sided limits of the plain formula are inf * 0 = NaN there: optax PR 1752)."""
    (leaves,), (dleaves,) = primals, tangents
    n = _pnorm(leaves, p)
    pos = n > 0
    inv_n = jnp.where(pos, 1.0 / jnp.where(pos, n, 1.0), 0.0)

    def weight(x):
        if p == 2.0:
            return x * inv_n
        r = jnp.abs(x) * inv_n
        nz = r > 0
        return jnp.where(nz, jnp.where(nz, r, 1.0) ** (p - 1.0), 0.0) * jnp.sign(x)

    dn = sum(jnp.sum(weight(x) * dx) for x, dx in zip(leaves, dleaves, strict=True))
    return n, dn


def global_norm(tree, norm_type: float = 2.0):
    """The p-norm of all entries of a pytree, as torch computes ``total_norm``, overflow-safe.

    torch takes the p-norm of each tensor, then the p-norm of those norms; for finite p
    this equals (sum over all entries |x|^p)^(1/p), and max |x| for p = inf.

    The sum is taken of |x / s|^p with s the power of two just below m = max |x| (as BLAS
    ``nrm2`` scales by m), then multiplied back by s: the result is correct for entries of any
    finite size (1e200 and 1e-200 alike), and bit-for-bit the plain sqrt(sum x^2) whenever that
    neither overflows nor underflows (dividing by a power of two is exact). A single number's
    norm is its absolute value. A norm above the largest float is inf. (XLA on CPU flushes
    subnormal numbers, below 2.2e-308 in float64, to zero, inputs and results alike.)

    Non-finite entries: any NaN gives NaN; otherwise any +-inf gives inf. An all-zero (or
    empty) tree gives 0, and ``jax.grad`` of the norm there is 0, not NaN.

    Args:
      tree: a pytree of arrays.
      norm_type: p > 0, or ``float('inf')``.

    Returns:
      A scalar array (of the leaves' common floating dtype).
    """
    p = check_norm_type(norm_type)
    leaves = [jnp.asarray(x) for x in _leaves(tree)]
    leaves = [x for x in leaves if x.size]
    if not leaves:
        return jnp.asarray(0.0)
    dtype = jnp.result_type(*leaves)
    if not jnp.issubdtype(dtype, jnp.inexact):
        dtype = jnp.result_type(dtype, float)
    leaves = tuple(x.astype(dtype) for x in leaves)
    if p == float("inf"):
        m = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x)) for x in leaves])
        return jnp.where(m == 0, jnp.zeros_like(m), m)  # gradient 0 at 0, as for finite p
    return _pnorm(leaves, p)


def clip_grad_norm(grads, max_norm, norm_type: float = 2.0, eps: float = 1e-6,
                   error_if_nonfinite: bool = False):
    """Scale all gradients together so that their total p-norm is at most ``max_norm``.

    total_norm = (sum_leaves ||g||_p^p)^(1/p) (max for p = inf);
    coef = min(1, max_norm / (total_norm + eps)); every leaf is multiplied by coef.
    This is torch's rule, including the eps that makes the result slightly below max_norm,
    and the clamp that leaves gradients with total_norm <= max_norm - eps untouched.
    ``max_norm = inf`` passes every finite gradient through unchanged.

    One deliberate difference: total_norm does not overflow (see ``global_norm``), so
    ``clip_grad_norm([4e180], 1)`` gives [1.], where torch's sum of squares overflows to inf
    and the gradient is zeroed.

    Non-finite gradients (``error_if_nonfinite=False``), exactly as torch computes them:
      - an inf entry and no NaN: total_norm = inf, coef = max_norm / (inf + eps) = 0, so
        finite entries become 0 (keeping their sign) and +-inf entries NaN (0 * inf);
      - a NaN entry: total_norm = NaN, coef = NaN, every entry NaN;
      - ``max_norm = inf`` with an inf entry: coef = inf / inf = NaN, every entry NaN.

    ``jax.grad`` through this function is finite at g = 0 (also with eps = 0) and for
    ``max_norm = inf``.

    Args:
      grads: a pytree of arrays.
      max_norm: threshold > 0 (inf allowed).
      norm_type: p > 0 or inf.
      eps: added to total_norm in the denominator (torch uses 1e-6); finite and >= 0.
      error_if_nonfinite: raise ``RuntimeError`` when total_norm is NaN or Inf. Needs
        concrete gradients (it cannot raise inside ``jit``).

    Returns:
      (clipped_grads, total_norm), total_norm measured before clipping.

    Example:
      >>> g, n = clip_grad_norm({"w": jnp.array([3.0, 4.0])}, max_norm=1.0)
      >>> float(n)
      5.0

    References: torch.nn.utils.clip_grad_norm_ (torch/nn/utils/clip_grad.py:
    ``clip_coef = max_norm / (total_norm + 1e-6)``, ``torch.clamp(clip_coef, max=1.0)``);
    docs/theory.md §7.
    """
    validate.positive("max_norm", max_norm, allow_inf=True)
    validate.nonnegative("eps", eps)
    total = global_norm(grads, norm_type)
    if error_if_nonfinite:
        if isinstance(total, jax.core.Tracer):
            raise ValueError(
                "error_if_nonfinite=True needs concrete gradients; call clip_grad_norm "
                "outside jit, or check jnp.isfinite(total_norm) yourself."
            )
        if not bool(jnp.isfinite(total)):
            raise RuntimeError(
                f"The total norm of order {float(norm_type)} for gradients is non-finite "
                f"({float(total)}), so it cannot be clipped; set error_if_nonfinite=False to "
                "clip anyway."
            )
    den = total + eps
    # min(max_norm / den, 1) as torch computes it, written so that the branch not taken
    # never divides by 0 or by inf (double where: a finite gradient at g = 0 and for
    # max_norm = inf). The predicate below is never differentiated.
    clip = max_norm < den
    coef = jnp.where(clip, max_norm / jnp.where(clip, den, 1.0), 1.0)
    coef = jnp.where(jnp.isnan(max_norm / den), jnp.nan, coef)  # NaN norm; inf / inf
    return _tree_map(lambda g: g * coef.astype(jnp.result_type(g)), grads), total


def clip_grad_value(grads, clip_value):
    """Clip every entry to [-clip_value, clip_value] (torch ``clip_grad_value_``, Keras
    ``clipvalue``). This changes the direction of the gradient.

    Non-finite entries: +inf becomes clip_value, -inf becomes -clip_value, NaN stays NaN
    (as torch's ``clamp``); the other entries are unaffected.

    Example:
      >>> clip_grad_value(jnp.array([10.0, 0.1]), 1.0)
      Array([1. , 0.1], dtype=float64)

    References: torch.nn.utils.clip_grad_value_; Keras optimizers; docs/theory.md §2.
    """
    validate.positive("clip_value", clip_value, allow_inf=True)
    return _tree_map(lambda g: jnp.clip(g, -clip_value, clip_value).astype(g.dtype), grads)


def _scale_to(g, norm, max_norm, nan_if):
    """g * max_norm / max(norm, max_norm) (``tf.clip_by_norm``), g itself when norm <= max_norm.

    Written with a double where, so that neither max_norm = inf (inf / inf) nor norm = 0
    reaches a division, in the value or in its gradient. Where ``nan_if`` holds and
    max_norm is finite the result is NaN.
    """
    clip = norm > max_norm
    factor = jnp.where(clip, max_norm / jnp.where(clip, norm, 1.0), 1.0)
    factor = jnp.where(nan_if & (max_norm < jnp.inf), jnp.nan, factor)
    return g * factor.astype(g.dtype)


def clip_per_tensor_norm(grads, max_norm):
    """Clip each leaf by its own L2 norm (Keras ``clipnorm``; ``tf.clip_by_norm``).

    g_leaf <- g_leaf * max_norm / max(||g_leaf||, max_norm). No eps. Leaves are clipped
    independently, so the direction of the whole gradient can change. The norm does not
    overflow (see ``global_norm``), unlike Keras's plain sum of squares.

    Non-finite entries, as Keras's formula gives them, leaf by leaf (other leaves are
    unaffected): a leaf with an inf entry and no NaN has norm inf, so its finite entries
    become 0 (keeping their sign) and its +-inf entries NaN (inf / inf); a leaf with a NaN
    entry becomes all NaN. ``max_norm = inf`` passes every leaf through unchanged.

    References: Keras optimizer ``clipnorm`` (keras ``clip_by_norm``); docs/theory.md §7.
    """
    validate.positive("max_norm", max_norm, allow_inf=True)

    def one(g):
        norm = global_norm(g)
        return _scale_to(g, norm, max_norm, jnp.isnan(norm))

    return _tree_map(one, grads)


def clip_global_norm(grads, max_norm):
    """Clip all leaves by their joint L2 norm (Keras ``global_clipnorm``).

    g <- g * max_norm / max(||g||, max_norm). Unlike ``clip_grad_norm`` there is no eps. The
    norm does not overflow (see ``global_norm``).

    Non-finite entries: when the joint norm is inf or NaN (any entry inf or NaN), every entry
    of every leaf becomes NaN, as in Keras and ``tf.clip_by_global_norm`` ("the entries are
    all set to NaN to signal that an error occurred"). ``max_norm = inf`` passes every
    gradient through unchanged.

    References: Keras optimizer ``global_clipnorm`` (keras ``clip_by_global_norm``:
    ``scale = scale_for_finite + (use_norm - use_norm)``); ``tf.clip_by_global_norm``.
    """
    validate.positive("max_norm", max_norm, allow_inf=True)
    total = global_norm(grads)
    bad = ~jnp.isfinite(total)
    return _tree_map(lambda g: _scale_to(g, total, max_norm, bad), grads)
