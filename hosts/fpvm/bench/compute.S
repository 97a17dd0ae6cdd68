# Compute-heavy rv32im program for the quick MIPS measurement (not a conformance
# test): a 64-bit-state xorshift/multiply mix over a 16 KiB table with loads,
# stores, shifts, multiplies, a division every 16 iterations and branches.
# `iters` (a0 at entry of the loop) sets the length: about 40 instructions each.
    .text
    .globl _start
_start:
    la s0, table
    li s1, 0x12345678       # state lo
    li s2, 0x9abcdef1       # state hi
    li s3, 4000000          # iterations
    li s4, 0                # checksum
    li s5, 0x0fff           # word-index mask (16 KiB / 4 - 1)
loop:
    # xorshift on (s2:s1)
    slli t0, s1, 13
    srli t1, s1, 19
    xor s1, s1, t0
    xor s2, s2, t1
    srli t0, s2, 7
    slli t1, s2, 25
    xor s2, s2, t0
    xor s1, s1, t1
    slli t0, s1, 17
    xor s2, s2, t0
    # multiply-mix
    mul t2, s1, s2
    mulhu t3, s1, s2
    add s4, s4, t2
    xor s4, s4, t3
    # table read-modify-write
    and t4, s1, s5
    slli t4, t4, 2
    add t4, s0, t4
    lw t5, 0(t4)
    add t5, t5, s4
    sw t5, 0(t4)
    lbu t6, 1(t4)
    add s4, s4, t6
    lh t6, 2(t4)
    sub s4, s4, t6
    # a division every 16 iterations
    andi t0, s3, 15
    bnez t0, 1f
    ori t1, s2, 1
    divu t2, s4, t1
    remu t3, s4, t1
    add s4, s4, t2
    xor s4, s4, t3
1:
    sltu t0, s4, s1
    add s4, s4, t0
    addi s3, s3, -1
    bnez s3, loop
    # exit(checksum & 0xff)
    andi a0, s4, 0xff
    li a7, 93
    ecall

    .bss
    .balign 4096
table: .space 16384
