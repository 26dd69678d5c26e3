"""A cache prefetch hint for compiled loops over large per-page arrays.

A stream of random page accesses over gigabytes of simulated memory misses the
CPU caches on every per-page array it touches (PTE flags, PTE pfns, ground-truth
stamps, SPTEs). The stream's future addresses are known, so the loops ask for
those lines a few accesses ahead (LLVM's `llvm.prefetch`, a hint: it never
faults and changes no value) and overlap the misses.
"""

from __future__ import annotations

from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch"]

#: LLVM 15 and later name the intrinsic by an opaque pointer type
_OPAQUE_POINTERS = binding.llvm_version_info >= (15,)


@intrinsic
def prefetch(typingctx, arr, idx):
    """prefetch(arr, i): hint that `arr[i]` (a 1-D array) will be read soon."""
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(idx, types.Integer):
        return None
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        name = "llvm.prefetch.p0" if _OPAQUE_POINTERS else "llvm.prefetch.p0i8"
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32]), name)
        # rw=0 (read; a write hint measured no faster), locality=3 (all levels), data cache
        builder.call(fn, [i8p, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen
