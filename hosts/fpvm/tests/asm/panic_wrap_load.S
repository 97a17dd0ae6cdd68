# expect: panic 5
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    li x5, 0xfffffffc
    lw x6, 4(x5)
    EXPECT_PANIC_TAIL
TEST_END
