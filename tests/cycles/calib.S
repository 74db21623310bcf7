@ Calibration loops for tools/qemu-plugin/mnn_cycles.c (tests/test_cycles.py).
@
@ A bare-metal program for QEMU's mps2-an386 (Cortex-M4) and mps2-an500
@ (Cortex-M7): segments of known instruction mixes, each run N times (N comes
@ from the command line, -DN=...), separated by calls to `mark`, whose address
@ the plugin is given: every call writes an event with the instruction and
@ cycle counts so far. The test counts each segment's cycles by hand from the
@ core's timing table and compares. It ends through semihosting SYS_EXIT.
    .syntax unified
    .thumb

    .text
    .word 0x20008000            @ initial SP
    .word reset                 @ reset vector (a Thumb function: bit 0 set)

    .thumb_func
    .global reset
reset:
    @ The FPU on: CPACR full access to CP10 and CP11.
    ldr r0, =0xe000ed88
    ldr r1, [r0]
    orr r1, r1, #(0xf << 20)
    str r1, [r0]
    dsb
    isb
    ldr r4, =0x20000000         @ buf: 64 words
    add r5, r4, #64             @ a second buffer
    str r4, [r4, #8]            @ buf[2] = &buf, for the dependent loads
    movs r3, #3
    movs r6, #8
    mov r2, #1000

    bl mark
    @ S0: nothing (the calls alone)
    bl mark

    @ S1: two loads that pipeline, an add
    movs r0, #N
1:  ldr r1, [r4]
    ldr r2, [r4, #4]
    adds r7, r1, r2
    subs r0, #1
    bne 1b
    bl mark

    @ S2: a load whose address the previous load produced
    movs r0, #N
1:  ldr r1, [r4, #8]
    ldr r7, [r1]
    subs r0, #1
    bne 1b
    bl mark

    @ S3: multiply-accumulate, 32 and 64 bits, dual 16-bit
    movs r0, #N
    mov r2, #1000
1:  mla r1, r2, r3, r1
    smlad r7, r2, r3, r7
    umlal r8, r9, r2, r3
    subs r0, #1
    bne 1b
    bl mark

    @ S4: load and store multiple, four registers
    movs r0, #N
1:  ldmia r4, {r1, r2, r7, r8}
    stmia r5, {r1, r2, r7, r8}
    subs r0, #1
    bne 1b
    bl mark

    @ S5: a store whose address the instruction before computed, then a load
    movs r0, #N
1:  add r7, r4, #16
    str r1, [r7]
    ldr r2, [r7, #4]
    subs r0, #1
    bne 1b
    bl mark

    @ S6: register-offset stores after a load and after a store
    movs r0, #N
1:  ldr r1, [r4]
    str r1, [r5, r6]
    str r1, [r5, r6]
    subs r0, #1
    bne 1b
    bl mark

    @ S7: divides
    movs r0, #N
    mov r2, #1000
1:  sdiv r1, r2, r3
    udiv r7, r2, r3
    subs r0, #1
    bne 1b
    bl mark

    @ S8: floating point
    movs r0, #N
1:  vadd.f32 s0, s1, s2
    vmla.f32 s3, s4, s5
    vdiv.f32 s6, s7, s8
    vldr s9, [r4]
    vstr s9, [r4, #12]
    subs r0, #1
    bne 1b
    bl mark

    @ S9: a call: push and a pop into the PC
    movs r0, #N
1:  bl leaf
    subs r0, #1
    bne 1b
    bl mark

    @ S10: independent ALU pairs (the M7 issues each pair together)
    movs r0, #N
1:  adds r1, r1, #1
    adds r2, r2, #1
    eors r7, r7, r3
    orrs r6, r6, r3
    subs r0, #1
    bne 1b
    bl mark

    @ S11: 32-bit loads and stores: immediate and register offsets, post-indexed
    movs r0, #N
1:  ldr r8, [r4, #4]
    ldrsh r9, [r4, r6]
    str r8, [r5, #4]
    mov r7, r4
    ldr r1, [r7], #4
    ldrb r2, [r7, #1]!
    subs r0, #1
    bne 1b
    bl mark

    @ The end: SYS_EXIT (0x18), ADP_Stopped_ApplicationExit.
    movs r0, #0x18
    ldr r1, =0x20026
    bkpt 0xab
2:  b 2b

    .thumb_func
    .global leaf
leaf:
    push {r4, lr}
    pop {r4, pc}

    .thumb_func
    .global mark
mark:
    bx lr

    .ltorg
