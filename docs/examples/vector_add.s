; c[i] = a[i] + b[i] (fp32) for i < n.  Uniforms: a, b, c, n.
    unif r0            ; a
    unif r1            ; b
    unif r2            ; c
    unif r3            ; n
    sreg r4, global_x
    ult r5, r4, r3     ; lanes past the end do nothing
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
