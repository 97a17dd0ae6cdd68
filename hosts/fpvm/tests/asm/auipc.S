.include "macros.inc"
TEST_BEGIN
    li gp, 2
1:  auipc x14, 0
    la x7, 1b
    bne x14, x7, fail
    li gp, 3
2:  auipc x14, 1
    la x7, 2b
    li x8, 0x1000
    add x7, x7, x8
    bne x14, x7, fail
    li gp, 4
3:  auipc x14, 0xfffff
    la x7, 3b
    li x8, 0x1000
    sub x7, x7, x8
    bne x14, x7, fail
    li gp, 5
4:  auipc x14, 0x80000
    la x7, 4b
    li x8, 0x80000000
    add x7, x7, x8
    bne x14, x7, fail
    li gp, 6
    auipc x0, 0x12345
    bnez x0, fail
TEST_END
