# expect: panic 6
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    li a7, 222
    ecall
    EXPECT_PANIC_TAIL
TEST_END
