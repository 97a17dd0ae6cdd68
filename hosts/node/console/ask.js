// The console's chain module: what the page does on chain, through viem. Bundled
// by build.sh (esbuild) into target/console/ask.js, which the node serves at
// /console/ask.js; console.js imports it when present.
//
// connect(info) takes /api/chain and answers with the page's chain handle:
// - on `oracle devnet` (info.rpc and info.devnet_key set) it reads through the
//   devnet's RPC and signs with the devnet's user account;
// - elsewhere it reads and signs through an injected EIP-1193 wallet
//   (window.ethereum), asked to switch to the node's chain first;
// - with neither it can only say why not.
import {
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  formatEther,
  hexToString,
  http,
  parseAbi,
  parseEventLogs,
  stringToHex,
  zeroAddress,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

const ORACLE_ABI = parseAbi([
  "struct Request { address requester; uint32 modelId; uint32 deadline; uint32 gasLimit; uint96 modelFee; uint96 gasFee; uint40 challengeDeadline; uint8 status; uint8 callbackStatus; uint8 callbackAttempts; bytes32 payloadHash; }",
  "struct Result { address submitter; bool bondLocked; uint32 openDisputes; uint32 version; bytes32 outputHash; bytes32 claim; }",
  "struct Model { bytes32 modelRoot; bytes32 programHash; address factory; uint32 challengeWindow; uint32 maxInputSize; uint32 maxCallbackGas; address feeToken; uint96 fee; address publisher; uint96 pendingFee; address feeReceiver; uint16 receiverShareBps; uint40 pendingFeeAt; }",
  "struct Operator { uint96 bond; uint96 locked; uint40 unbondAt; }",
  "function getModel(uint256 modelId) view returns (Model)",
  "function getOperator(address operator) view returns (Operator)",
  "event ResultSubmitted(uint256 indexed requestId, address indexed operator, bytes output, bytes32 claim)",
  "event BondSlashed(uint256 indexed requestId, address indexed backer, uint256 amount)",
  "function estimateFee(uint256 modelId, uint256 gasLimit) view returns (uint256)",
  "function requestCallback(uint256 modelId, bytes input, address callbackContract, uint64 gasLimit, bytes callbackData) payable returns (uint256)",
  "function getRequest(uint256 requestId) view returns (Request)",
  "function getResult(uint256 requestId) view returns (Result)",
  "event AICallbackRequest(address indexed account, uint256 indexed requestId, uint256 modelId, bytes input, address callbackContract, uint64 gasLimit, bytes callbackData)",
]);

const PROMPT_ABI = parseAbi([
  "function estimateFee(uint256 modelId) view returns (uint256)",
  "function calculateAIResult(uint256 modelId, string prompt) payable returns (uint256)",
  "function requests(uint256 requestId) view returns (address sender, uint256 modelId, bytes input)",
  // Declared as bytes (the same ABI encoding as string): an image model's answer is
  // a PNG or its hash, not text.
  "function getAIResult(uint256 modelId, string prompt) view returns (bytes)",
  "function rejected(uint256 requestId) view returns (bool)",
]);

/** AIOracle's RequestStatus and CallbackStatus, by value. */
export const REQUEST_STATUS = ["none", "pending", "submitted", "disputed", "finalized", "refunded"];
export const CALLBACK_STATUS = ["none", "succeeded", "failed", "skipped"];

/** The page's chain handle for the node's chain `info` (/api/chain). */
export async function connect(info) {
  const chain = defineChain({
    id: info.chain_id,
    name: "the oracle's chain",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: info.rpc ? [info.rpc] : [] } },
  });
  let transport;
  let account;
  let signer;
  if (info.rpc && info.devnet_key) {
    transport = http(info.rpc);
    account = privateKeyToAccount(info.devnet_key);
    signer = "the devnet's user account " + account.address;
  } else if (typeof window !== "undefined" && window.ethereum) {
    transport = custom(window.ethereum);
    signer = "your wallet";
  } else {
    return { signer: null, why: "no wallet in this browser: an EIP-1193 wallet (e.g. a browser extension) signs requests here" };
  }
  const client = createPublicClient({ chain, transport });
  const wallet = createWalletClient({ chain, transport, account });
  const viaPrompt = !!info.prompt;
  /** Per operator: the next block to count events from, and the counts so far. */
  const tallies = new Map();
  const eventAbi = (name) => ORACLE_ABI.find((x) => x.type === "event" && x.name === name);

  /** The account that signs (asks the wallet the first time). */
  async function from() {
    if (account) return account;
    const [address] = await wallet.requestAddresses();
    if ((await wallet.getChainId()) !== info.chain_id) await wallet.switchChain({ id: info.chain_id });
    account = address;
    signer = "your wallet's account " + address;
    return account;
  }

  /** The fee of one request to `modelId`, in wei (what the send pays). */
  async function fee(modelId) {
    if (viaPrompt) {
      return client.readContract({ address: info.prompt, abi: PROMPT_ABI, functionName: "estimateFee", args: [BigInt(modelId)] });
    }
    return client.readContract({ address: info.oracle, abi: ORACLE_ABI, functionName: "estimateFee", args: [BigInt(modelId), 0n] });
  }

  return {
    get signer() {
      return signer;
    },
    viaPrompt,
    fee,
    formatEther,

    /**
     * Ask `modelId` for `text`: through the Prompt contract (its callback stores the
     * answer) when the node names one, else AIOracle directly without a callback.
     * Resolves to the request id read from the receipt's AICallbackRequest event.
     */
    async send(modelId, text) {
      const by = await from();
      const value = await fee(modelId);
      const hash = viaPrompt
        ? await wallet.writeContract({
            address: info.prompt, abi: PROMPT_ABI, functionName: "calculateAIResult",
            args: [BigInt(modelId), text], value, account: by, chain,
          })
        : await wallet.writeContract({
            address: info.oracle, abi: ORACLE_ABI, functionName: "requestCallback",
            args: [BigInt(modelId), stringToHex(text), zeroAddress, 0n, "0x"], value, account: by, chain,
          });
      const receipt = await client.waitForTransactionReceipt({ hash });
      if (receipt.status !== "success") throw new Error("the request transaction reverted: " + hash);
      const [event] = parseEventLogs({ abi: ORACLE_ABI, logs: receipt.logs, eventName: "AICallbackRequest" });
      if (!event) throw new Error("no AICallbackRequest event in " + hash);
      return { id: event.args.requestId.toString(), tx: hash, fee: value };
    },

    /** Registered model `id` as the chain holds it: program hash, fee, window. */
    async model(id) {
      const m = await client.readContract({ address: info.oracle, abi: ORACLE_ABI, functionName: "getModel", args: [BigInt(id)] });
      return {
        root: m.modelRoot,
        programHash: m.programHash,
        fee: formatEther(m.fee) + (m.feeToken === zeroAddress ? " ETH" : " of token " + m.feeToken),
        challengeWindow: Number(m.challengeWindow),
        publisher: m.publisher,
      };
    },

    /**
     * Operator `address` as the chain holds it: its bond (and the part locked
     * behind open results), the results it posted and the times its bond was
     * slashed (a result of its lost), counted from the oracle's events since the
     * node's first block. The counts are kept and only new blocks are read on the
     * next call (calls for one address run one after the other).
     */
    async operator(address) {
      const tally = tallies.get(address) || { next: BigInt(info.from_block || 0), served: 0, slashed: 0, queue: Promise.resolve() };
      tallies.set(address, tally);
      const update = async () => {
        const latest = await client.getBlockNumber();
        if (tally.next > latest) return;
        const range = { address: info.oracle, fromBlock: tally.next, toBlock: latest };
        const [submitted, slashed] = await Promise.all([
          client.getLogs({ ...range, event: eventAbi("ResultSubmitted"), args: { operator: address } }),
          client.getLogs({ ...range, event: eventAbi("BondSlashed"), args: { backer: address } }),
        ]);
        tally.served += submitted.length;
        tally.slashed += slashed.length;
        tally.next = latest + 1n;
      };
      const counted = tally.queue.then(update);
      tally.queue = counted.catch(() => {});
      const [o] = await Promise.all([
        client.readContract({ address: info.oracle, abi: ORACLE_ABI, functionName: "getOperator", args: [address] }),
        counted,
      ]);
      return {
        bond: formatEther(o.bond) + " ETH",
        locked: formatEther(o.locked) + " ETH",
        served: tally.served,
        slashed: tally.slashed,
      };
    },

    /**
     * Request `id` as the chain holds it now: status, challenge deadline (unix
     * seconds), current result (submitter, version, claim, open disputes), callback
     * status and, for a request sent through the Prompt contract, the answer its
     * callback delivered, as 0x hex (or that the oracle rejected the input).
     */
    async watch(id) {
      const requestId = BigInt(id);
      const [request, result] = await Promise.all([
        client.readContract({ address: info.oracle, abi: ORACLE_ABI, functionName: "getRequest", args: [requestId] }),
        client.readContract({ address: info.oracle, abi: ORACLE_ABI, functionName: "getResult", args: [requestId] }),
      ]);
      const out = {
        status: REQUEST_STATUS[request.status] || String(request.status),
        modelId: String(request.modelId),
        challengeDeadline: Number(request.challengeDeadline),
        deadline: Number(request.deadline),
        callback: CALLBACK_STATUS[request.callbackStatus] || String(request.callbackStatus),
        submitter: result.submitter === zeroAddress ? null : result.submitter,
        version: result.version,
        openDisputes: result.openDisputes,
        claim: result.claim,
        outputHash: result.outputHash,
        delivered: null,
        rejected: false,
      };
      if (viaPrompt && out.callback === "succeeded") {
        const [, modelId, input] = await client.readContract({ address: info.prompt, abi: PROMPT_ABI, functionName: "requests", args: [requestId] });
        out.rejected = await client.readContract({ address: info.prompt, abi: PROMPT_ABI, functionName: "rejected", args: [requestId] });
        if (!out.rejected) {
          out.delivered = await client.readContract({ address: info.prompt, abi: PROMPT_ABI, functionName: "getAIResult", args: [modelId, hexToString(input)] });
        }
      }
      return out;
    },
  };
}
