.include "macros.inc"
TEST_BEGIN
    li gp, 2
    li x5, 5
    fence
    fence rw, rw
    fence r, w
    li x7, 5
    bne x5, x7, fail
TEST_END
