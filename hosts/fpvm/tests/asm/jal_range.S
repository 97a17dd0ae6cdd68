# JAL at both ends of its range: +1048572 (largest 4-aligned) and -1048576.
.include "macros.inc"
TEST_BEGIN
    li gp, 2
    la x30, 5f
    j 0f
9:  jr x30
0:  jal x1, 1f
    .fill 262142, 4, 0x00000013
1:  jal x0, 9b
    j fail
5:  la x7, 0b
    addi x7, x7, 4
    bne x1, x7, fail
TEST_END
