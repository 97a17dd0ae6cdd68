# write returns its length in a0 and changes no other register.
.include "macros.inc"
TEST_BEGIN
    li gp, 2
    li x5, 0x55
    li a7, 64
    li a0, 1
    la a1, msg
    li a2, 6
    ecall
    li x7, 6
    bne a0, x7, fail
    li x7, 0x55
    bne x5, x7, fail
    li x7, 6
    bne a2, x7, fail
    .data
msg: .ascii "hello\n"
    .text
TEST_END
