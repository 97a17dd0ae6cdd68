# x0 reads as zero whatever is written to it.
.include "macros.inc"
TEST_BEGIN
    li gp, 2
    addi x0, x0, 5
    bnez x0, fail
    li gp, 3
    li x5, 7
    add x0, x5, x5
    bnez x0, fail
    li gp, 4
    lui x0, 1
    bnez x0, fail
    li gp, 5
    la x5, testdata
    li x6, -1
    sw x6, 0(x5)
    lw x0, 0(x5)
    bnez x0, fail
    li gp, 6
    mul x0, x6, x6
    add x14, x0, x0
    bnez x14, fail
TEST_END
