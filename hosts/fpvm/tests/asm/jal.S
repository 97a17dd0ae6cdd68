.include "macros.inc"
TEST_BEGIN
    # link value is the address after the jal
    li gp, 2
1:  jal x14, 2f
    j fail
2:  la x7, 1b
    addi x7, x7, 4
    bne x14, x7, fail
    # jal x0 writes nothing
    li gp, 3
    jal x0, 3f
    j fail
3:  bnez x0, fail
    # backward jump
    li gp, 4
    li x5, 0
    j 5f
4:  addi x5, x5, 1
    j 6f
5:  jal x1, 4b
6:  li x7, 1
    bne x5, x7, fail
    # rd = ra, call and return through jalr
    li gp, 5
    li x5, 0
    jal ra, 7f
    li x7, 9
    bne x5, x7, fail
    j 8f
7:  li x5, 9
    ret
8:
TEST_END
