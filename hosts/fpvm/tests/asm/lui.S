.include "macros.inc"
TEST_BEGIN
    li gp, 2
    lui x14, 0
    bnez x14, fail
    li gp, 3
    lui x14, 0xfffff
    li x7, 0xfffff000
    bne x14, x7, fail
    li gp, 4
    lui x14, 0x80000
    srai x14, x14, 12
    li x7, 0xfff80000
    bne x14, x7, fail
    li gp, 5
    lui x14, 0x7ffff
    li x7, 0x7ffff000
    bne x14, x7, fail
    li gp, 6
    lui x14, 1
    li x7, 0x1000
    bne x14, x7, fail
    li gp, 7
    lui x0, 0x12345
    bnez x0, fail
TEST_END
