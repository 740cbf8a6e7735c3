// Hand-written QPU kernels shared by the hardware tests.
#pragma once

namespace rplayer::test {

// c[i] = a[i] + b[i] (fp32) for i < n. Uniforms: a, b, c, n.
inline constexpr const char* kVectorAdd = R"(
    unif r0            ; a
    unif r1            ; b
    unif r2            ; c
    unif r3            ; n
    sreg r4, global_x
    ult r5, r4, r3
    if r5
    shl r6, r4, #2
    add r7, r0, r6
    ld r8, [r7]
    add r7, r1, r6
    ld r9, [r7]
    fadd r10, r8, r9
    add r7, r2, r6
    st [r7], r10
    endif
    end
)";

// dst[i] = src[i] + 1 (int32) for i < n. Uniforms: src, dst, n.
inline constexpr const char* kCopyPlusOne = R"(
    unif r0
    unif r1
    unif r2
    sreg r4, global_x
    ult r5, r4, r2
    if r5
    shl r6, r4, #2
    add r7, r0, r6
    ld r8, [r7]
    add r8, r8, #1
    add r7, r1, r6
    st [r7], r8
    endif
    end
)";

// out[wg] = sum of in[wg*256 .. wg*256+255] (int32), a 256-invocation workgroup
// reducing through shared memory with barriers. Uniforms: in, out.
inline constexpr const char* kReduce256 = R"(
    unif r0            ; in
    unif r1            ; out
    sreg r2, local_id
    sreg r3, global_x
    shl r4, r3, #2
    add r4, r0, r4
    ld r5, [r4]
    shl r6, r2, #2     ; this invocation's shared slot
    sts [r6], r5
    bar
    mov r7, #128       ; stride
loop:
    ult r8, r2, r7
    if r8
    shl r9, r7, #2
    add r9, r6, r9
    lds r10, [r6]
    lds r11, [r9]
    add r10, r10, r11
    sts [r6], r10
    endif
    bar
    shr r7, r7, #1
    ine r12, r7, #0
    bany r12, loop
    ieq r13, r2, #0
    if r13
    lds r14, [r6]
    sreg r15, wg_x
    shl r15, r15, #2
    add r15, r1, r15
    st [r15], r14
    endif
    end
)";

// Spins for `n` iterations, then stores 1 to out. Uniforms: n, out.
inline constexpr const char* kSpin = R"(
    unif r0
    unif r1
loop:
    sub r0, r0, #1
    ine r2, r0, #0
    bany r2, loop
    mov r3, #1
    st [r1], r3
    end
)";

}  // namespace rplayer::test
