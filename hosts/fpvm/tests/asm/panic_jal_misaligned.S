# expect: panic 2
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    .word 0x0020006f  # jal x0, +2
    EXPECT_PANIC_TAIL
TEST_END
