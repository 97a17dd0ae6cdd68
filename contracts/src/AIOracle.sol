// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {AIOracleCallbackReceiver} from "./AIOracleCallbackReceiver.sol";
import {IAIOracle} from "./interfaces/IAIOracle.sol";
import {GameParams, GameStatus, IDisputeGame, IDisputeGameFactory} from "./interfaces/IDisputeGame.sol";

/// @title AIOracle
/// @notice Optimistic AI oracle: permissionless model registry, paid requests with a callback, results
///         posted by bonded operators, a per-model challenge window backed by a dispute game, finality, and
///         a callback dispatched once that no receiver can block. Fees and bonds are pull-based.
/// @dev See contracts/README.md for the fee rule, the bonds, and the request state machine.
///      To keep `requestCallback` cheap, a request stores only a hash of its dispatch payload (input hash,
///      callback contract, callback data hash); callers of `challenge`, `finalize` and `retryCallback`
///      pass the payload back (it is in the `AICallbackRequest` event) and the contract checks it against
///      the hash. Output bytes live in calldata and logs; storage keeps their hash.
contract AIOracle is IAIOracle, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    // ------------------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------------------

    /// @notice Lifecycle of a request (see README for the transitions).
    enum RequestStatus {
        NONE,
        PENDING,
        SUBMITTED,
        DISPUTED,
        FINALIZED,
        REFUNDED
    }

    /// @notice Where a dispute stands. A challenger that wins has its bond held until the request is final
    ///         (`CHALLENGER_WON`); then `claimReward` pays it (`PAID`: the bond and a share of the pot) if its claim
    ///         is the final one, or records it `FORFEITED` (the bond went into the pot). A winner whose result
    ///         became current and was defeated later is `SLASHED` (its bond went into the pot).
    enum DisputeStatus {
        NONE,
        OPEN,
        DEFENDER_WON,
        CHALLENGER_WON,
        SLASHED,
        PAID,
        FORFEITED
    }

    /// @notice What happened to a request's callback.
    enum CallbackStatus {
        NONE,
        SUCCEEDED,
        FAILED,
        SKIPPED
    }

    /// @notice A registered model. `modelRoot`, `programHash` and `factory` never change: the factory is the
    ///         one set on AIOracle when the model was registered, and it binds every claim posted for the
    ///         model and creates its games. A fee increase waits in `pendingFee` until `pendingFeeAt`
    ///         (`FEE_INCREASE_DELAY` after it was set); `getModel` shows the fee in force.
    struct Model {
        bytes32 modelRoot;
        bytes32 programHash;
        IDisputeGameFactory factory;
        uint32 challengeWindow;
        uint32 maxInputSize;
        uint32 maxCallbackGas;
        address feeToken;
        uint96 fee;
        address publisher;
        uint96 pendingFee;
        address feeReceiver;
        uint16 receiverShareBps;
        uint40 pendingFeeAt;
    }

    /// @notice Construction parameters. The three owner parameters (`treasury`, `protocolFeeBps`,
    ///         `minCallbackGasPrice`) are initial values, later changed only through the
    ///         propose -> `parameterDelay` -> apply path; the others are immutable.
    struct OracleConfig {
        address treasury;
        uint16 protocolFeeBps;
        uint128 minCallbackGasPrice;
        uint256 submissionBond;
        uint256 challengeBond;
        uint256 challengerRewardBps;
        uint256 unbondDelay;
        uint256 requestTimeout;
        uint256 parameterDelay;
    }

    /// @notice A proposed change of the owner parameters, applicable from `effectiveAt` (0: none pending).
    struct ParameterProposal {
        address treasury;
        uint16 protocolFeeBps;
        uint40 effectiveAt;
        uint128 minCallbackGasPrice;
    }

    /// @notice Model parameters given at registration.
    struct ModelConfig {
        bytes32 modelRoot;
        bytes32 programHash;
        uint96 fee;
        address feeToken;
        address feeReceiver;
        uint16 receiverShareBps;
        uint32 challengeWindow;
        uint32 maxInputSize;
        uint32 maxCallbackGas;
    }

    /// @notice A request (three storage slots).
    struct Request {
        address requester;
        uint32 modelId;
        uint32 deadline;
        uint32 gasLimit;
        uint96 modelFee;
        uint96 gasFee;
        uint40 challengeDeadline;
        RequestStatus status;
        CallbackStatus callbackStatus;
        uint8 callbackAttempts;
        bytes32 payloadHash;
    }

    /// @dev What the requests of one call share (kept in memory).
    struct Template {
        uint32 modelId;
        uint64 gasLimit;
        uint32 maxInputSize;
        uint96 modelFee;
        uint96 gasFee;
        address callbackContract;
        bytes32 callbackDataHash;
    }

    /// @notice The current result of a request. It is backed either by `submissionBond` locked in the
    ///         submitting operator's bond (`bondLocked`), or, once a challenger's result replaced it, by that
    ///         challenger's held `challengeBond` (the dispute `Pot.backing`). `version` counts replacements.
    struct Result {
        address submitter;
        bool bondLocked;
        uint32 openDisputes;
        uint32 version;
        bytes32 outputHash;
        bytes32 claim;
    }

    /// @notice One dispute: a game between the challenger and the result version it challenged (`defender`,
    ///         `defenderClaim`, `version`). A request may have several, concurrently.
    struct Dispute {
        uint256 requestId;
        address challenger;
        DisputeStatus status;
        uint32 version;
        address defender;
        IDisputeGame game;
        bytes32 defenderClaim;
        bytes32 outputHash;
        bytes32 claim;
    }

    /// @notice A request's reward pot (see README, "Rewards"): the backing bonds slashed so far and the bonds
    ///         of winning challengers held until the request is final; at finality the bonds of winners with
    ///         another claim than the final one join it, `challengerRewardBps` of it is split equally among the
    ///         winners with the final claim (`share` each, on top of their bond) and the rest goes to the
    ///         treasury.
    struct Pot {
        uint128 amount;
        uint32 heldWinners;
        uint64 backing;
        uint128 share;
    }

    /// @notice An operator's bond. `locked` backs results not yet final; `unbondAt` is 0 while bonded.
    struct Operator {
        uint96 bond;
        uint96 locked;
        uint40 unbondAt;
    }

    // ------------------------------------------------------------------------------------------------
    // Constants and immutables
    // ------------------------------------------------------------------------------------------------

    /// @notice Basis-point denominator.
    uint256 public constant BPS = 10_000;
    /// @notice Upper bound of the protocol's share of a model fee.
    uint256 public constant MAX_PROTOCOL_FEE_BPS = 1000;
    /// @notice Upper bound of the model receiver's share (so receiver + protocol never exceed 100%).
    uint256 public constant MAX_RECEIVER_SHARE_BPS = BPS - MAX_PROTOCOL_FEE_BPS;
    /// @notice Upper bound of the owner-set callback gas price floor (protects requesters).
    uint256 public constant MAX_MIN_CALLBACK_GAS_PRICE = 1000 gwei;
    /// @notice Challenge window bounds for a model.
    uint32 public constant MIN_CHALLENGE_WINDOW = 1;
    /// @notice Challenge window bounds for a model.
    uint32 public constant MAX_CHALLENGE_WINDOW = 30 days;
    /// @notice Upper bound of a model's callback gas (well under a block).
    uint32 public constant MAX_CALLBACK_GAS = 15_000_000;
    /// @notice Largest output a result may carry (bounds the callback's memory cost to the finalizer).
    uint256 public constant MAX_OUTPUT_SIZE = 64 * 1024;
    /// @notice Upper bound of a model's `maxInputSize`. A `PREIMAGE_READ` step of the input carries the whole
    ///         input in its witness: at 64 KiB that step costs about 2.7M gas in all (calldata at the EIP-7623
    ///         floor, 40 gas per non-zero byte, plus execution), well under a 30M block, so the step of any
    ///         dispute can always be proven (README, "Input size bound").
    uint32 public constant MAX_INPUT_SIZE = 64 * 1024;
    /// @notice A model fee increase takes effect this long after the publisher sets it (decreases at once), so
    ///         a request already sent never pays more than the fee it saw.
    uint256 public constant FEE_INCREASE_DELAY = 1 days;
    /// @notice Upper bound of the delay between proposing and applying owner parameters.
    uint256 public constant MAX_PARAMETER_DELAY = 30 days;
    /// @notice Retries of a failed callback the requester may make after the first attempt.
    uint8 public constant MAX_CALLBACK_RETRIES = 3;
    /// @notice Bytes of a failed callback's revert data kept for the `CallbackDispatched` event.
    uint256 public constant MAX_RETURNDATA_COPY = 128;
    /// @notice Gas kept back for the bookkeeping after a callback returns.
    uint256 public constant CALLBACK_RESERVE_GAS = 40_000;

    /// @notice ETH an operator locks per submitted result; slashed if a challenger wins.
    uint96 public immutable submissionBond;
    /// @notice ETH a challenger posts; paid to the submitter if the submitter wins.
    uint96 public immutable challengeBond;
    /// @notice Share of a slashed submission bond paid to the winning challenger (rest to the treasury).
    uint256 public immutable challengerRewardBps;
    /// @notice Delay between `requestUnbond` and `withdrawBond`.
    uint256 public immutable unbondDelay;
    /// @notice Time an operator has to serve a request before it can be refunded.
    uint256 public immutable requestTimeout;
    /// @notice Delay between proposing owner parameters and applying them (at most MAX_PARAMETER_DELAY).
    uint256 public immutable PARAMETER_DELAY;

    // ------------------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------------------

    /// @notice Receives the protocol share of fees and the non-reward part of slashed bonds.
    address public treasury;
    /// @notice Protocol share of every model fee, in basis points.
    uint16 public protocolFeeBps;
    /// @notice Floor of the callback gas price (the price is max(floor, basefee)).
    uint128 public minCallbackGasPrice;
    /// @notice The factory the next registered models get (each model keeps the one it was registered with);
    ///         registration is refused while unset.
    IDisputeGameFactory public disputeGameFactory;
    /// @notice The pending change of the owner parameters, if any.
    ParameterProposal public parameterProposal;

    /// @notice Number of registered models; ids are 1..modelCount.
    uint32 public modelCount;
    /// @notice Id of the last request; ids start at 1.
    uint256 public lastRequestId;

    mapping(uint256 modelId => Model) internal _models;
    mapping(uint256 requestId => Request) internal _requests;
    mapping(uint256 requestId => Result) internal _results;
    /// @notice Number of disputes opened; ids are 1..disputeCount.
    uint256 public disputeCount;
    mapping(uint256 disputeId => Dispute) internal _disputes;
    /// @notice Whether `challenger` already challenged version `version` of the result of `requestId` (once
    ///         each: a result installed again later is a new version, challengeable again).
    mapping(uint256 requestId => mapping(uint32 version => mapping(address challenger => bool))) public
        hasChallenged;
    mapping(uint256 requestId => Pot) internal _pots;
    /// @notice Number of winning disputes of a request with `claim` whose bond is held (not slashed).
    mapping(uint256 requestId => mapping(bytes32 claim => uint32)) public winnersWithClaim;
    mapping(address operator => Operator) internal _operators;
    /// @notice Pull balances: account => token (address(0) for ETH) => amount withdrawable.
    mapping(address account => mapping(address token => uint256)) public balanceOf;

    // ------------------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------------------

    /// @notice A model was registered.
    event ModelRegistered(uint256 indexed modelId, address indexed publisher, ModelConfig config);
    /// @notice A model's fee changed (a decrease, in force at once; applies to later requests).
    event ModelFeeUpdated(uint256 indexed modelId, uint96 fee);
    /// @notice A model's fee will rise to `fee` at `effectiveAt` (until then the fee in force stays).
    event ModelFeeIncreaseScheduled(uint256 indexed modelId, uint96 fee, uint256 effectiveAt);
    /// @notice ETH paid beyond a request's price was credited to the payer (`balanceOf`, `withdraw`).
    event ExcessCredited(address indexed payer, uint256 amount);
    /// @notice A model's fee receiver or its share changed.
    event ModelFeeReceiverUpdated(uint256 indexed modelId, address feeReceiver, uint16 receiverShareBps);
    /// @notice An operator added to its bond (and is bonded again if it was unbonding).
    event OperatorBonded(address indexed operator, uint256 amount, uint256 bond);
    /// @notice An operator started unbonding; it may withdraw at `unbondAt`.
    event UnbondRequested(address indexed operator, uint256 unbondAt);
    /// @notice An operator withdrew its free bond.
    event BondWithdrawn(address indexed operator, uint256 amount);
    /// @notice A result was posted for a request.
    event ResultSubmitted(uint256 indexed requestId, address indexed operator, bytes output, bytes32 claim);
    /// @notice A result was challenged and a game opened.
    event ResultChallenged(
        uint256 indexed requestId,
        uint256 indexed disputeId,
        address indexed challenger,
        IDisputeGame game,
        bytes output,
        bytes32 claim
    );
    /// @notice A dispute's outcome was applied; `replaced` when the challenger's result became the result.
    event DisputeResolved(
        uint256 indexed requestId, uint256 indexed disputeId, bool challengerWon, bool replaced
    );
    /// @notice The bond backing a defeated result (`backer`'s) went into the request's pot.
    event BondSlashed(uint256 indexed requestId, address indexed backer, uint256 amount);
    /// @notice At finality: the pot (with forfeited bonds), the number of winners with the final claim and
    ///         the share each gets on top of its bond (the rest of the pot went to the treasury).
    event RewardsSettled(uint256 indexed requestId, uint256 pot, uint256 winners, uint256 share);
    /// @notice `claimReward` credited `amount` (zero: the dispute's claim was not the final one, its bond was
    ///         forfeited).
    event RewardClaimed(uint256 indexed disputeId, address indexed challenger, uint256 amount);
    /// @notice A callback ran (`success`), with at most MAX_RETURNDATA_COPY bytes of its revert data.
    event CallbackDispatched(uint256 indexed requestId, uint8 attempt, bool success, bytes reason);
    /// @notice An unserved request was refunded after its deadline.
    event RequestRefunded(uint256 indexed requestId, address indexed requester);
    /// @notice `account` withdrew `amount` of `token` (address(0) for ETH).
    event Withdrawn(address indexed account, address indexed token, uint256 amount);
    /// @notice The owner proposed new parameters, applicable from `effectiveAt`.
    event ParametersProposed(
        address treasury, uint16 protocolFeeBps, uint128 minCallbackGasPrice, uint256 effectiveAt
    );
    /// @notice The owner withdrew its pending proposal.
    event ParametersProposalCancelled();
    /// @notice Owner parameters changed (a proposal applied after its delay).
    event ParametersUpdated(address treasury, uint16 protocolFeeBps, uint128 minCallbackGasPrice);
    /// @notice The factory of models registered from now on changed (registered models keep theirs).
    event DisputeGameFactoryUpdated(IDisputeGameFactory factory);

    // ------------------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------------------

    error InvalidModelConfig();
    error UnknownModel(uint256 modelId);
    error NotModelPublisher();
    error InputTooLarge(uint256 size, uint256 max);
    error OutputTooLarge(uint256 size, uint256 max);
    error GasLimitTooHigh(uint256 gasLimit, uint256 max);
    error EmptyBatch();
    error InsufficientFee(uint256 paid, uint256 required);
    error ModelFeeAboveMax(uint256 fee, uint256 maxModelFee);
    error FeeTokenTransferMismatch();
    error EthTransferFailed();
    error InvalidStatus(RequestStatus status);
    error RequestExpired();
    error RequestNotExpired();
    error NotBondedOperator();
    error ZeroAmount();
    error NotUnbonding();
    error UnbondDelayNotElapsed();
    error InvalidClaim();
    error PayloadMismatch();
    error OutputMismatch();
    error ChallengeWindowClosed();
    error ChallengeWindowOpen();
    error AlreadyChallenged();
    error UnknownDispute(uint256 disputeId);
    error DisputeAlreadyResolved();
    error NothingToClaim(uint256 disputeId);
    error DisputesDisabled();
    error WrongBond(uint256 paid, uint256 required);
    error CannotChallengeOwnResult();
    error GameNotResolved();
    error InsufficientGasForCallback();
    error NotRequester();
    error CallbackNotRetryable();
    error InvalidParameters();
    error NoProposal();
    error ProposalNotReady(uint256 effectiveAt);

    // ------------------------------------------------------------------------------------------------
    // Construction and owner parameters
    // ------------------------------------------------------------------------------------------------

    /// @param initialOwner Owner of the protocol parameters.
    /// @param c Bonds, timings, the parameter delay and the initial owner parameters (see `OracleConfig`).
    constructor(address initialOwner, OracleConfig memory c) Ownable(initialOwner) {
        if (
            c.submissionBond == 0 || c.submissionBond > type(uint96).max || c.challengeBond == 0
                || c.challengerRewardBps > BPS || c.requestTimeout == 0 || c.requestTimeout > 365 days
                || c.unbondDelay > 365 days || c.parameterDelay > MAX_PARAMETER_DELAY
        ) revert InvalidParameters();
        _checkParameters(c.treasury, c.protocolFeeBps, c.minCallbackGasPrice);
        treasury = c.treasury;
        protocolFeeBps = c.protocolFeeBps;
        minCallbackGasPrice = c.minCallbackGasPrice;
        // casting to 'uint96' is safe because of the bound checked above
        // forge-lint: disable-next-line(unsafe-typecast)
        submissionBond = uint96(c.submissionBond);
        challengeBond = c.challengeBond.toUint96();
        challengerRewardBps = c.challengerRewardBps;
        unbondDelay = c.unbondDelay;
        requestTimeout = c.requestTimeout;
        PARAMETER_DELAY = c.parameterDelay;
    }

    /// @notice Propose new owner parameters (treasury, protocol fee share, callback gas price floor); they
    ///         can be applied once `PARAMETER_DELAY` has passed. Replaces a pending proposal.
    function proposeParameters(address treasury_, uint16 protocolFeeBps_, uint128 minCallbackGasPrice_)
        external
        onlyOwner
    {
        _checkParameters(treasury_, protocolFeeBps_, minCallbackGasPrice_);
        uint256 at = block.timestamp + PARAMETER_DELAY;
        parameterProposal = ParameterProposal({
            treasury: treasury_,
            protocolFeeBps: protocolFeeBps_,
            effectiveAt: at.toUint40(),
            minCallbackGasPrice: minCallbackGasPrice_
        });
        emit ParametersProposed(treasury_, protocolFeeBps_, minCallbackGasPrice_, at);
    }

    /// @notice Apply the pending proposal once its delay has passed.
    /// @dev The protocol share applies to requests finalized afterwards, the price floor to later requests.
    function applyParameters() external onlyOwner {
        ParameterProposal memory p = parameterProposal;
        if (p.effectiveAt == 0) revert NoProposal();
        if (block.timestamp < p.effectiveAt) revert ProposalNotReady(p.effectiveAt);
        delete parameterProposal;
        treasury = p.treasury;
        protocolFeeBps = p.protocolFeeBps;
        minCallbackGasPrice = p.minCallbackGasPrice;
        emit ParametersUpdated(p.treasury, p.protocolFeeBps, p.minCallbackGasPrice);
    }

    /// @notice Withdraw the pending proposal.
    function cancelParameters() external onlyOwner {
        if (parameterProposal.effectiveAt == 0) revert NoProposal();
        delete parameterProposal;
        emit ParametersProposalCancelled();
    }

    /// @notice Set the factory models registered from now on get (zero: registration is refused). Immediate:
    ///         a registered model keeps the factory it was registered with, so its results' claims, its
    ///         games and their rules never change.
    function setDisputeGameFactory(IDisputeGameFactory factory_) external onlyOwner {
        disputeGameFactory = factory_;
        emit DisputeGameFactoryUpdated(factory_);
    }

    function _checkParameters(address treasury_, uint16 protocolFeeBps_, uint128 minCallbackGasPrice_)
        internal
        pure
    {
        if (
            treasury_ == address(0) || protocolFeeBps_ > MAX_PROTOCOL_FEE_BPS
                || minCallbackGasPrice_ > MAX_MIN_CALLBACK_GAS_PRICE
        ) revert InvalidParameters();
    }

    // ------------------------------------------------------------------------------------------------
    // Model registry
    // ------------------------------------------------------------------------------------------------

    /// @notice Register a model; the caller becomes its publisher. Permissionless. The model gets the dispute
    ///         game factory set now, for good: a model whose results could not be disputed is refused.
    /// @return modelId The new model's id.
    function registerModel(ModelConfig calldata c) external returns (uint256 modelId) {
        IDisputeGameFactory factory = disputeGameFactory;
        if (address(factory) == address(0)) revert DisputesDisabled();
        if (
            c.modelRoot == bytes32(0) || c.programHash == bytes32(0)
                || c.challengeWindow < MIN_CHALLENGE_WINDOW || c.challengeWindow > MAX_CHALLENGE_WINDOW
                || c.maxInputSize == 0 || c.maxInputSize > MAX_INPUT_SIZE || c.maxCallbackGas == 0
                || c.maxCallbackGas > MAX_CALLBACK_GAS || c.receiverShareBps > MAX_RECEIVER_SHARE_BPS
                || (c.feeReceiver == address(0) && c.receiverShareBps != 0)
        ) revert InvalidModelConfig();
        modelId = ++modelCount;
        _models[modelId] = Model({
            modelRoot: c.modelRoot,
            programHash: c.programHash,
            factory: factory,
            challengeWindow: c.challengeWindow,
            maxInputSize: c.maxInputSize,
            maxCallbackGas: c.maxCallbackGas,
            feeToken: c.feeToken,
            fee: c.fee,
            publisher: msg.sender,
            pendingFee: 0,
            feeReceiver: c.feeReceiver,
            receiverShareBps: c.receiverShareBps,
            pendingFeeAt: 0
        });
        emit ModelRegistered(modelId, msg.sender, c);
    }

    /// @notice Change a model's fee (publisher only). A decrease (or no change) is in force at once and cancels
    ///         a pending increase; an increase is in force `FEE_INCREASE_DELAY` later (replacing a pending
    ///         one), so nobody can raise the price of a request already on its way. Requests already made keep
    ///         the fee they paid.
    function setModelFee(uint256 modelId, uint96 fee) external {
        Model storage m = _publishedModel(modelId);
        uint96 current = _modelFee(m);
        m.fee = current;
        if (fee <= current) {
            m.fee = fee;
            m.pendingFee = 0;
            m.pendingFeeAt = 0;
            emit ModelFeeUpdated(modelId, fee);
        } else {
            uint256 at = block.timestamp + FEE_INCREASE_DELAY;
            m.pendingFee = fee;
            m.pendingFeeAt = at.toUint40();
            emit ModelFeeIncreaseScheduled(modelId, fee, at);
        }
    }

    /// @notice Change a model's fee receiver and its share (publisher only); applies at finalization.
    function setModelFeeReceiver(uint256 modelId, address feeReceiver, uint16 receiverShareBps) external {
        Model storage m = _publishedModel(modelId);
        if (receiverShareBps > MAX_RECEIVER_SHARE_BPS || (feeReceiver == address(0) && receiverShareBps != 0))
        {
            revert InvalidModelConfig();
        }
        m.feeReceiver = feeReceiver;
        m.receiverShareBps = receiverShareBps;
        emit ModelFeeReceiverUpdated(modelId, feeReceiver, receiverShareBps);
    }

    /// @notice A registered model, with the fee in force now in `fee` (and a pending increase, if any, in
    ///         `pendingFee` / `pendingFeeAt`).
    function getModel(uint256 modelId) external view returns (Model memory model) {
        Model storage m = _model(modelId);
        model = m;
        if (model.pendingFeeAt != 0 && block.timestamp >= model.pendingFeeAt) {
            model.fee = model.pendingFee;
            model.pendingFee = 0;
            model.pendingFeeAt = 0;
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Fees
    // ------------------------------------------------------------------------------------------------

    /// @notice Price per unit of callback gas charged now: max(minCallbackGasPrice, block.basefee).
    function callbackGasPrice() public view returns (uint256) {
        uint256 floor = minCallbackGasPrice;
        return block.basefee > floor ? block.basefee : floor;
    }

    /// @notice The lowest callback gas price a request is accepted at now: the price a fee estimated one block
    ///         earlier may have used, max(minCallbackGasPrice, ceil(basefee * 8 / 9)) (EIP-1559 raises the
    ///         base fee by at most 1/8 per block). README, "Fee rule".
    function minAcceptedGasPrice() public view returns (uint256) {
        uint256 floor = minCallbackGasPrice;
        uint256 low = block.basefee - block.basefee / 9;
        return low > floor ? low : floor;
    }

    /// @inheritdoc IAIOracle
    /// @dev For an ERC-20 model this is the ETH part only (the callback gas); the token fee is pulled with
    ///      transferFrom. `estimateFees` returns both.
    function estimateFee(uint256 modelId, uint256 gasLimit) external view returns (uint256) {
        (uint256 ethFee,,) = estimateFees(modelId, gasLimit);
        return ethFee;
    }

    /// @notice Both parts of a request's price: the ETH to send, and the fee token with its amount
    ///         (`token == address(0)` means the model fee is included in `ethFee`).
    function estimateFees(uint256 modelId, uint256 gasLimit)
        public
        view
        returns (uint256 ethFee, address token, uint256 tokenFee)
    {
        Model storage m = _model(modelId);
        ethFee = gasLimit * callbackGasPrice();
        token = m.feeToken;
        uint256 fee = _modelFee(m);
        if (token == address(0)) ethFee += fee;
        else tokenFee = fee;
    }

    // ------------------------------------------------------------------------------------------------
    // Requests
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IAIOracle
    /// @dev Pays the model fee in force and the callback gas (README, "Fee rule"); ETH beyond the price is
    ///      credited to the caller (`balanceOf`), never sent back.
    function requestCallback(
        uint256 modelId,
        bytes calldata input,
        address callbackContract,
        uint64 gasLimit,
        bytes calldata callbackData
    ) external payable nonReentrant returns (uint256 requestId) {
        (Template memory t, address token) = _template(modelId, callbackContract, gasLimit, callbackData, 1);
        requestId = _storeRequest(t, input, callbackData);
        _collect(token, t.gasFee, t.modelFee, 1);
    }

    /// @notice `requestCallback` that reverts (`ModelFeeAboveMax`) if the model fee in force exceeds
    ///         `maxModelFee` (in the fee token for an ERC-20 model).
    function requestCallback(
        uint256 modelId,
        bytes calldata input,
        address callbackContract,
        uint64 gasLimit,
        bytes calldata callbackData,
        uint256 maxModelFee
    ) external payable nonReentrant returns (uint256 requestId) {
        (Template memory t, address token) = _template(modelId, callbackContract, gasLimit, callbackData, 1);
        if (t.modelFee > maxModelFee) revert ModelFeeAboveMax(t.modelFee, maxModelFee);
        requestId = _storeRequest(t, input, callbackData);
        _collect(token, t.gasFee, t.modelFee, 1);
    }

    /// @notice Several requests to one model in one call, sharing the callback; pays n times the fee.
    /// @return firstId The id of the first request; the others follow consecutively.
    function requestCallbackBatch(
        uint256 modelId,
        bytes[] calldata inputs,
        address callbackContract,
        uint64 gasLimit,
        bytes calldata callbackData
    ) external payable nonReentrant returns (uint256 firstId) {
        uint256 n = inputs.length;
        if (n == 0) revert EmptyBatch();
        (Template memory t, address token) = _template(modelId, callbackContract, gasLimit, callbackData, n);
        firstId = lastRequestId + 1;
        for (uint256 i; i < n; ++i) {
            _storeRequest(t, inputs[i], callbackData);
        }
        _collect(token, t.gasFee, t.modelFee, n);
    }

    /// @notice A request as stored.
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    /// @notice The current result of a request (zero if none).
    function getResult(uint256 requestId) external view returns (Result memory) {
        return _results[requestId];
    }

    /// @notice A dispute (zero if none).
    function getDispute(uint256 disputeId) external view returns (Dispute memory) {
        return _disputes[disputeId];
    }

    /// @inheritdoc IAIOracle
    function isFinalized(uint256 requestId) external view returns (bool) {
        return _requests[requestId].status == RequestStatus.FINALIZED;
    }

    /// @notice The payload hash a request stores: keccak256(abi.encode(inputHash, callbackContract,
    ///         keccak256(callbackData))).
    function payloadHash(bytes32 inputHash, address callbackContract, bytes32 callbackDataHash)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(inputHash, callbackContract, callbackDataHash));
    }

    /// @notice Refund an unserved request after its deadline to its requester's balance. Anyone may call.
    function refund(uint256 requestId) external nonReentrant {
        Request storage r = _requests[requestId];
        if (r.status != RequestStatus.PENDING) revert InvalidStatus(r.status);
        if (block.timestamp <= r.deadline) revert RequestNotExpired();
        r.status = RequestStatus.REFUNDED;
        address requester = r.requester;
        address token = _models[r.modelId].feeToken;
        if (token == address(0)) {
            _credit(requester, address(0), uint256(r.gasFee) + r.modelFee);
        } else {
            _credit(requester, address(0), r.gasFee);
            _credit(requester, token, r.modelFee);
        }
        emit RequestRefunded(requestId, requester);
    }

    // ------------------------------------------------------------------------------------------------
    // Operators
    // ------------------------------------------------------------------------------------------------

    /// @notice Add `msg.value` to the caller's bond; registers the caller as an operator, and cancels a
    ///         pending unbond.
    function bond() external payable nonReentrant {
        if (msg.value == 0) revert ZeroAmount();
        Operator storage op = _operators[msg.sender];
        uint96 newBond = op.bond + msg.value.toUint96();
        op.bond = newBond;
        op.unbondAt = 0;
        emit OperatorBonded(msg.sender, msg.value, newBond);
    }

    /// @notice Stop submitting and start the unbond delay.
    function requestUnbond() external {
        Operator storage op = _operators[msg.sender];
        if (op.bond == 0) revert NotBondedOperator();
        uint256 at = block.timestamp + unbondDelay;
        op.unbondAt = at.toUint40();
        emit UnbondRequested(msg.sender, at);
    }

    /// @notice After the delay, withdraw the part of the bond not locked behind pending results.
    function withdrawBond() external nonReentrant {
        Operator storage op = _operators[msg.sender];
        uint256 at = op.unbondAt;
        if (at == 0) revert NotUnbonding();
        if (block.timestamp < at) revert UnbondDelayNotElapsed();
        uint256 amount = op.bond - op.locked;
        if (amount == 0) revert ZeroAmount();
        op.bond = op.locked;
        emit BondWithdrawn(msg.sender, amount);
        _sendEth(msg.sender, amount);
    }

    /// @notice An operator's bond.
    function getOperator(address operator) external view returns (Operator memory) {
        return _operators[operator];
    }

    /// @notice Whether `operator` may submit now.
    function isBondedOperator(address operator) public view returns (bool) {
        Operator storage op = _operators[operator];
        return op.unbondAt == 0 && op.bond - op.locked >= submissionBond;
    }

    // ------------------------------------------------------------------------------------------------
    // Results, challenges, finality
    // ------------------------------------------------------------------------------------------------

    /// @notice Post the result of a pending request. The first valid submission wins; it locks
    ///         `submissionBond` of the caller's bond until the result is final.
    /// @param output The output bytes (kept in the log; storage keeps their hash). Empty: the request was
    ///        rejected by the model (the guest's error outcome); every success output is non-empty.
    /// @param proof What binds the claim to `output` (`IDisputeGameFactory.resultClaim` of the model's
    ///        factory): the 245-byte final VM state for a one-phase model, empty for a two-phase one.
    function submit(uint256 requestId, bytes calldata output, bytes calldata proof) external nonReentrant {
        Request storage r = _requests[requestId];
        if (r.status != RequestStatus.PENDING) revert InvalidStatus(r.status);
        if (block.timestamp > r.deadline) revert RequestExpired();
        if (output.length > MAX_OUTPUT_SIZE) revert OutputTooLarge(output.length, MAX_OUTPUT_SIZE);
        Model storage m = _models[r.modelId];
        bytes32 claim = m.factory.resultClaim(m.modelRoot, m.programHash, output, proof);
        Operator storage op = _operators[msg.sender];
        uint96 locked = op.locked;
        if (op.unbondAt != 0 || op.bond - locked < submissionBond) revert NotBondedOperator();
        op.locked = locked + submissionBond;

        r.status = RequestStatus.SUBMITTED;
        r.challengeDeadline = (block.timestamp + m.challengeWindow).toUint40();
        _results[requestId] = Result({
            submitter: msg.sender,
            bondLocked: true,
            openDisputes: 0,
            version: 0,
            outputHash: keccak256(output),
            claim: claim
        });
        emit ResultSubmitted(requestId, msg.sender, output, claim);
    }

    /// @notice Dispute the current result of a request within its challenge window, posting `challengeBond`
    ///         and the output the challenger holds to be right, with the proof binding its claim (as `submit`).
    ///         Opens a game through the model's factory.
    ///         Anyone may challenge, concurrently with other challengers (so a sock puppet that challenges
    ///         first and then loses on purpose cannot shield a wrong result); each address may challenge
    ///         each version of the result once.
    /// @param inputHash, callbackContract, callbackDataHash The request's payload (checked against its hash).
    /// @return disputeId The new dispute's id.
    function challenge(
        uint256 requestId,
        bytes32 inputHash,
        address callbackContract,
        bytes32 callbackDataHash,
        bytes calldata output,
        bytes calldata proof
    ) external payable nonReentrant returns (uint256 disputeId) {
        Request storage r = _requests[requestId];
        RequestStatus status = r.status;
        if (status != RequestStatus.SUBMITTED && status != RequestStatus.DISPUTED) {
            revert InvalidStatus(status);
        }
        if (block.timestamp > r.challengeDeadline) revert ChallengeWindowClosed();
        if (msg.value != challengeBond) revert WrongBond(msg.value, challengeBond);
        if (payloadHash(inputHash, callbackContract, callbackDataHash) != r.payloadHash) {
            revert PayloadMismatch();
        }
        if (output.length > MAX_OUTPUT_SIZE) revert OutputTooLarge(output.length, MAX_OUTPUT_SIZE);
        Model storage m = _models[r.modelId];
        bytes32 claim = m.factory.resultClaim(m.modelRoot, m.programHash, output, proof);
        IDisputeGame game;
        (disputeId, game) = _openDispute(r, requestId, inputHash, keccak256(output), claim);
        emit ResultChallenged(requestId, disputeId, msg.sender, game, output, claim);
    }

    /// @notice Apply a finished game's outcome. Anyone may call; the outcome does not depend on who calls or
    ///         in which order disputes are resolved, except that the first winner against the current version
    ///         replaces it.
    /// @dev Defender wins: the challenge bond is credited to the defender. Challenger wins: its bond is held
    ///      until the request is final (README, "Rewards"); if it challenged the current version, the bond
    ///      backing that version goes into the request's pot (the operator's locked `submissionBond`, or the
    ///      held bond of the winner that installed it, which is `SLASHED`), and the challenger's output and
    ///      claim become the result (version + 1), backed by its held bond, with a fresh challenge window (so a
    ///      wrong challenger can be challenged in turn). The request can finalize once no dispute is open and
    ///      its window has passed.
    function resolveDispute(uint256 disputeId) external nonReentrant {
        Dispute storage d = _disputes[disputeId];
        if (address(d.game) == address(0)) revert UnknownDispute(disputeId);
        if (d.status != DisputeStatus.OPEN) revert DisputeAlreadyResolved();
        GameStatus outcome = d.game.status();
        if (outcome == GameStatus.IN_PROGRESS) revert GameNotResolved();
        uint256 requestId = d.requestId;
        Request storage r = _requests[requestId];
        Result storage res = _results[requestId];
        bool challengerWon = outcome == GameStatus.CHALLENGER_WINS;
        bool replaced;
        if (!challengerWon) {
            d.status = DisputeStatus.DEFENDER_WON;
            _credit(d.defender, address(0), challengeBond);
        } else {
            d.status = DisputeStatus.CHALLENGER_WON;
            Pot storage pot = _pots[requestId];
            pot.heldWinners += 1;
            winnersWithClaim[requestId][d.claim] += 1;
            if (d.version == res.version) {
                replaced = true;
                _slashBacking(requestId, res, pot);
                res.submitter = d.challenger;
                res.bondLocked = false;
                res.outputHash = d.outputHash;
                res.claim = d.claim;
                res.version = d.version + 1;
                pot.backing = disputeId.toUint64();
                r.challengeDeadline = (block.timestamp + _models[r.modelId].challengeWindow).toUint40();
            }
        }
        uint32 open = res.openDisputes - 1;
        res.openDisputes = open;
        if (open == 0) r.status = RequestStatus.SUBMITTED;
        emit DisputeResolved(requestId, disputeId, challengerWon, replaced);
    }

    /// @notice Once the request is final, pay a winning dispute (anyone may call; credited to its challenger):
    ///         its bond and its share of the pot if its claim is the final one; nothing if not (its bond was
    ///         forfeited into the pot at finality).
    /// @return amount What was credited.
    function claimReward(uint256 disputeId) external nonReentrant returns (uint256 amount) {
        Dispute storage d = _disputes[disputeId];
        if (d.status != DisputeStatus.CHALLENGER_WON) revert NothingToClaim(disputeId);
        uint256 requestId = d.requestId;
        RequestStatus st = _requests[requestId].status;
        if (st != RequestStatus.FINALIZED) revert InvalidStatus(st);
        if (d.claim == _results[requestId].claim) {
            d.status = DisputeStatus.PAID;
            amount = uint256(challengeBond) + _pots[requestId].share;
            _credit(d.challenger, address(0), amount);
        } else {
            d.status = DisputeStatus.FORFEITED;
        }
        emit RewardClaimed(disputeId, d.challenger, amount);
    }

    /// @notice What `claimReward(disputeId)` would credit now (zero before the request is final, and for a
    ///         dispute that did not win, was slashed, forfeited or was paid already).
    function claimableReward(uint256 disputeId) external view returns (uint256) {
        Dispute storage d = _disputes[disputeId];
        uint256 requestId = d.requestId;
        if (
            d.status != DisputeStatus.CHALLENGER_WON || _requests[requestId].status != RequestStatus.FINALIZED
                || d.claim != _results[requestId].claim
        ) return 0;
        return uint256(challengeBond) + _pots[requestId].share;
    }

    /// @notice A request's reward pot.
    function getPot(uint256 requestId) external view returns (Pot memory) {
        return _pots[requestId];
    }

    /// @notice Make a result final after its challenge window (no open dispute), pay everyone, and
    ///         dispatch the callback once with the requested gas. Anyone may call; the caller is paid the
    ///         request's callback gas fee. A failing receiver does not block finality. An empty output is the
    ///         error outcome of a request the model rejected: the receiver's `aiOracleCallbackError` is called
    ///         (`InvalidInput`, the output as message) instead of `aiOracleCallback`, under the same gas rules.
    /// @param inputHash, callbackContract, callbackData The request's payload (checked against its hash).
    /// @param output The result's output bytes (checked against the stored hash).
    function finalize(
        uint256 requestId,
        bytes32 inputHash,
        address callbackContract,
        bytes calldata callbackData,
        bytes calldata output
    ) external nonReentrant {
        Request storage r = _requests[requestId];
        if (r.status != RequestStatus.SUBMITTED) revert InvalidStatus(r.status);
        if (block.timestamp <= r.challengeDeadline) revert ChallengeWindowOpen();
        if (payloadHash(inputHash, callbackContract, keccak256(callbackData)) != r.payloadHash) {
            revert PayloadMismatch();
        }
        Result storage res = _results[requestId];
        if (keccak256(output) != res.outputHash) revert OutputMismatch();

        r.status = RequestStatus.FINALIZED;
        address submitter = res.submitter;
        if (res.bondLocked) {
            res.bondLocked = false;
            _operators[submitter].locked -= submissionBond;
        }
        // (a challenger's result: its held bond comes back through `claimReward`, with its share)
        _settlePot(requestId, res.claim);
        _payFees(r, submitter);

        address requester = r.requester;
        emit AICallbackResult(requester, requestId, msg.sender, output);
        if (callbackContract == address(0)) {
            r.callbackStatus = CallbackStatus.SKIPPED;
        } else {
            _dispatch(r, requestId, callbackContract, callbackData, output);
        }
    }

    /// @notice Run a failed callback (or error callback) again (requester only, at most MAX_CALLBACK_RETRIES
    ///         times). The caller pays the gas; the receiver gets the same gas limit as before.
    function retryCallback(
        uint256 requestId,
        bytes32 inputHash,
        address callbackContract,
        bytes calldata callbackData,
        bytes calldata output
    ) external nonReentrant {
        Request storage r = _requests[requestId];
        if (msg.sender != r.requester) revert NotRequester();
        if (r.callbackStatus != CallbackStatus.FAILED || r.callbackAttempts > MAX_CALLBACK_RETRIES) {
            revert CallbackNotRetryable();
        }
        if (payloadHash(inputHash, callbackContract, keccak256(callbackData)) != r.payloadHash) {
            revert PayloadMismatch();
        }
        if (keccak256(output) != _results[requestId].outputHash) revert OutputMismatch();
        _dispatch(r, requestId, callbackContract, callbackData, output);
    }

    // ------------------------------------------------------------------------------------------------
    // Withdrawals
    // ------------------------------------------------------------------------------------------------

    /// @notice Withdraw the caller's whole balance of `token` (address(0) for ETH).
    function withdraw(address token) external nonReentrant returns (uint256 amount) {
        amount = balanceOf[msg.sender][token];
        if (amount == 0) revert ZeroAmount();
        balanceOf[msg.sender][token] = 0;
        emit Withdrawn(msg.sender, token, amount);
        if (token == address(0)) _sendEth(msg.sender, amount);
        else IERC20(token).safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------

    /// @dev A registered model (every one has a factory; the check reads the slot with its limits).
    function _model(uint256 modelId) internal view returns (Model storage m) {
        m = _models[modelId];
        if (address(m.factory) == address(0)) revert UnknownModel(modelId);
    }

    function _publishedModel(uint256 modelId) internal view returns (Model storage m) {
        m = _model(modelId);
        if (m.publisher != msg.sender) revert NotModelPublisher();
    }

    /// @dev The fee in force: a pending increase once its time has come, else the stored fee.
    function _modelFee(Model storage m) internal view returns (uint96) {
        uint256 at = m.pendingFeeAt;
        if (at != 0 && block.timestamp >= at) return m.pendingFee;
        return m.fee;
    }

    /// @dev What the `n` requests of one call share: the model's limits and price, checked and computed once.
    ///      The callback gas fee of each is its gas limit at the current price, or less if the ETH sent
    ///      covers less, down to the gas limit at `minAcceptedGasPrice` (below that: `InsufficientFee`).
    function _template(
        uint256 modelId,
        address callbackContract,
        uint64 gasLimit,
        bytes calldata callbackData,
        uint256 n
    ) internal view returns (Template memory t, address token) {
        Model storage m = _model(modelId);
        uint256 maxGas = m.maxCallbackGas;
        if (gasLimit > maxGas) revert GasLimitTooHigh(gasLimit, maxGas);
        // casting to 'uint32' is safe because `_model` found the model, so modelId <= modelCount (uint32)
        // forge-lint: disable-next-line(unsafe-typecast)
        t.modelId = uint32(modelId);
        t.gasLimit = gasLimit;
        t.maxInputSize = m.maxInputSize;
        t.modelFee = _modelFee(m);
        token = m.feeToken;
        uint256 ethModelFee = token == address(0) ? t.modelFee : 0;
        uint256 least = ethModelFee + uint256(gasLimit) * minAcceptedGasPrice();
        if (msg.value < least * n) revert InsufficientFee(msg.value, least * n);
        uint256 gasFee = uint256(gasLimit) * callbackGasPrice();
        uint256 covered = msg.value / n - ethModelFee;
        t.gasFee = (covered < gasFee ? covered : gasFee).toUint96();
        t.callbackContract = callbackContract;
        t.callbackDataHash = keccak256(callbackData);
    }

    function _storeRequest(Template memory t, bytes calldata input, bytes calldata callbackData)
        internal
        returns (uint256 requestId)
    {
        if (input.length > t.maxInputSize) revert InputTooLarge(input.length, t.maxInputSize);
        requestId = ++lastRequestId;
        Request storage r = _requests[requestId];
        r.requester = msg.sender;
        r.modelId = t.modelId;
        r.deadline = (block.timestamp + requestTimeout).toUint32();
        r.gasLimit = uint32(t.gasLimit);
        r.modelFee = t.modelFee;
        r.gasFee = t.gasFee;
        r.status = RequestStatus.PENDING;
        r.payloadHash = payloadHash(keccak256(input), t.callbackContract, t.callbackDataHash);
        emit AICallbackRequest(
            msg.sender, requestId, t.modelId, input, t.callbackContract, t.gasLimit, callbackData
        );
    }

    /// @dev Take payment for `n` requests (`_template` checked the ETH covers it): the excess ETH is credited
    ///      to the payer, never pushed (a contract without `receive` may overpay); the token part is pulled
    ///      and must arrive in full (fee-on-transfer tokens are refused).
    function _collect(address token, uint256 gasFee, uint256 modelFee, uint256 n) internal {
        uint256 ethDue = gasFee * n;
        if (token == address(0)) {
            ethDue += modelFee * n;
        } else if (modelFee != 0) {
            uint256 due = modelFee * n;
            uint256 before = IERC20(token).balanceOf(address(this));
            IERC20(token).safeTransferFrom(msg.sender, address(this), due);
            if (IERC20(token).balanceOf(address(this)) - before != due) revert FeeTokenTransferMismatch();
        }
        if (msg.value > ethDue) {
            uint256 excess = msg.value - ethDue;
            _credit(msg.sender, address(0), excess);
            emit ExcessCredited(msg.sender, excess);
        }
    }

    /// @dev Split the model fee (receiver share, protocol share, rest to the result's submitter) and pay the
    ///      callback gas fee to the finalizer. Every wei is credited to someone: the operator gets the
    ///      remainder, so rounding never loses value.
    function _payFees(Request storage r, address submitter) internal {
        Model storage m = _models[r.modelId];
        address token = m.feeToken;
        uint256 fee = r.modelFee;
        uint256 receiverAmt = fee * m.receiverShareBps / BPS;
        uint256 protocolAmt = fee * protocolFeeBps / BPS;
        uint256 operatorAmt = fee - receiverAmt - protocolAmt;
        _credit(m.feeReceiver, token, receiverAmt);
        _credit(treasury, token, protocolAmt);
        if (token == address(0) && msg.sender == submitter) {
            _credit(submitter, address(0), operatorAmt + r.gasFee);
        } else {
            _credit(submitter, token, operatorAmt);
            _credit(msg.sender, address(0), r.gasFee);
        }
    }

    /// @dev The bond backing the current result goes into the pot: the operator's locked submission bond, or
    ///      the held bond of the winning dispute that installed the result (no longer a winner).
    function _slashBacking(uint256 requestId, Result storage res, Pot storage pot) internal {
        uint256 slashed;
        if (res.bondLocked) {
            uint96 b = submissionBond;
            Operator storage op = _operators[res.submitter];
            op.bond -= b;
            op.locked -= b;
            slashed = b;
        } else {
            Dispute storage backer = _disputes[pot.backing];
            backer.status = DisputeStatus.SLASHED;
            pot.heldWinners -= 1;
            winnersWithClaim[requestId][backer.claim] -= 1;
            slashed = challengeBond;
        }
        pot.amount += slashed.toUint128();
        emit BondSlashed(requestId, res.submitter, slashed);
    }

    /// @dev At finality: winners whose claim is not the final one forfeit their held bond into the pot;
    ///      `challengerRewardBps` of the pot is split equally among the winners with the final claim (each
    ///      collects it with its bond through `claimReward`), the rest (all of it without such winners, and the
    ///      rounding) is credited to the treasury.
    function _settlePot(uint256 requestId, bytes32 finalClaim) internal {
        Pot storage pot = _pots[requestId];
        uint256 held = pot.heldWinners;
        uint256 amount = pot.amount;
        if (held == 0 && amount == 0) return;
        uint256 winners = winnersWithClaim[requestId][finalClaim];
        amount += (held - winners) * challengeBond;
        uint256 share;
        if (winners != 0) share = amount * challengerRewardBps / BPS / winners;
        pot.amount = amount.toUint128();
        pot.share = share.toUint128();
        _credit(treasury, address(0), amount - share * winners);
        emit RewardsSettled(requestId, amount, winners, share);
    }

    /// @dev Check the challenger against the current result, record the dispute, and create its game.
    function _openDispute(
        Request storage r,
        uint256 requestId,
        bytes32 inputHash,
        bytes32 outputHash,
        bytes32 claim
    ) internal returns (uint256 disputeId, IDisputeGame game) {
        Result storage res = _results[requestId];
        bytes32 defenderClaim = res.claim;
        if (claim == defenderClaim) revert InvalidClaim();
        if (msg.sender == res.submitter) revert CannotChallengeOwnResult();
        uint32 version = res.version;
        if (hasChallenged[requestId][version][msg.sender]) revert AlreadyChallenged();
        hasChallenged[requestId][version][msg.sender] = true;

        r.status = RequestStatus.DISPUTED;
        res.openDisputes += 1;
        game = _openGame(r.modelId, requestId, inputHash, res, outputHash, claim);
        disputeId = ++disputeCount;
        _disputes[disputeId] = Dispute({
            requestId: requestId,
            challenger: msg.sender,
            status: DisputeStatus.OPEN,
            version: version,
            defender: res.submitter,
            game: game,
            defenderClaim: defenderClaim,
            outputHash: outputHash,
            claim: claim
        });
    }

    /// @dev Create the game; its starting state comes from on-chain data only.
    function _openGame(
        uint256 modelId,
        uint256 requestId,
        bytes32 inputHash,
        Result storage res,
        bytes32 outputHash,
        bytes32 claim
    ) internal returns (IDisputeGame) {
        GameParams memory p;
        Model storage m = _models[modelId];
        p.requestId = requestId;
        p.modelRoot = m.modelRoot;
        p.programHash = m.programHash;
        p.inputHash = inputHash;
        p.submitter = res.submitter;
        p.submitterClaim = res.claim;
        p.submitterOutputHash = res.outputHash;
        p.challenger = msg.sender;
        p.challengerClaim = claim;
        p.challengerOutputHash = outputHash;
        return m.factory.create(p);
    }

    function _credit(address account, address token, uint256 amount) internal {
        if (amount != 0) balanceOf[account][token] += amount;
    }

    function _sendEth(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert EthTransferFailed();
    }

    /// @dev Call the receiver (`aiOracleCallback`, or `aiOracleCallbackError` for the empty output) with exactly
    ///      the request's gas limit. The caller must leave enough gas that
    ///      the callee really gets `gasLimit` (EIP-150 keeps 1/64 back) plus a reserve for the bookkeeping,
    ///      so a finalizer cannot make a callback fail by starving it. At most MAX_RETURNDATA_COPY bytes of
    ///      return data are copied, so a returndata bomb costs the callee, not us. Re-entry is blocked by the
    ///      reentrancy guard held by the calling function.
    function _dispatch(
        Request storage r,
        uint256 requestId,
        address callbackContract,
        bytes calldata callbackData,
        bytes calldata output
    ) internal {
        uint256 gasLimit = r.gasLimit;
        bytes memory data = output.length == 0
            ? abi.encodeCall(
                AIOracleCallbackReceiver.aiOracleCallbackError,
                (requestId, AIOracleCallbackReceiver.AIOracleError.InvalidInput, output, callbackData)
            )
            : abi.encodeCall(AIOracleCallbackReceiver.aiOracleCallback, (requestId, output, callbackData));
        if (gasleft() < gasLimit + gasLimit / 63 + CALLBACK_RESERVE_GAS) revert InsufficientGasForCallback();
        bool success;
        bytes memory reason;
        uint256 maxCopy = MAX_RETURNDATA_COPY;
        assembly ("memory-safe") {
            success := call(gasLimit, callbackContract, 0, add(data, 0x20), mload(data), 0, 0)
            if iszero(success) {
                let size := returndatasize()
                if gt(size, maxCopy) { size := maxCopy }
                reason := mload(0x40)
                mstore(reason, size)
                returndatacopy(add(reason, 0x20), 0, size)
                mstore(0x40, add(add(reason, 0x20), and(add(size, 31), not(31))))
            }
        }
        uint8 attempt = r.callbackAttempts + 1;
        r.callbackAttempts = attempt;
        r.callbackStatus = success ? CallbackStatus.SUCCEEDED : CallbackStatus.FAILED;
        emit CallbackDispatched(requestId, attempt, success, reason);
    }
}
