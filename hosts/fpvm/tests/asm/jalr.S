.include "macros.inc"
TEST_BEGIN
    # target and link
    li gp, 2
    la x5, 8f
1:  jalr x14, 0(x5)
    j fail
8:  la x7, 1b
    addi x7, x7, 4
    bne x14, x7, fail
    # lowest bit of the target is cleared
    li gp, 3
    la x5, 2f
    addi x5, x5, 1
    jalr x0, 0(x5)
    j fail
2:
    # negative immediate
    li gp, 4
    la x5, 3f
    addi x5, x5, 16
    jalr x0, -16(x5)
    j fail
3:
    # positive immediate and odd immediate
    li gp, 5
    la x5, 4f
    addi x5, x5, -9
    jalr x0, 9(x5)
    j fail
4:
    # rd == rs1: the target uses the old value
    li gp, 6
    la x5, 5f
6:  jalr x5, 0(x5)
    j fail
5:  la x7, 6b
    addi x7, x7, 4
    bne x5, x7, fail
    # jalr x0 writes nothing
    li gp, 7
    la x5, 7f
    jalr x0, 0(x5)
7:  bnez x0, fail
TEST_END
