# fpvm-only
# the first byte above the null guard page and the top word of memory.
.include "macros.inc"
TEST_BEGIN
    li gp, 2
    li x5, 0x1000
    li x6, 0x11223344
    sw x6, 0(x5)
    lw x14, 0(x5)
    bne x14, x6, fail
    lb x14, 0(x5)
    li x7, 0x44
    bne x14, x7, fail
    li gp, 3
    li x5, 0xfffffffc
    sw x6, 0(x5)
    lw x14, 0(x5)
    bne x14, x6, fail
    lbu x14, 3(x5)
    li x7, 0x11
    bne x14, x7, fail
    sh x6, 2(x5)
    lw x14, 0(x5)
    li x7, 0x33443344
    bne x14, x7, fail
    li gp, 4
    li x5, -1
    sb x5, 0(x5)
    lbu x14, -1(zero)
    li x7, 0xff
    bne x14, x7, fail
TEST_END
